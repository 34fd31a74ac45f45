"""Reads of the ledger. Balances always derive from entries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Sum

from ledger.models import Account, Entry, LedgerTransaction


def account_balance(*, code: str, currency: str) -> int:
    """Debit-positive balance of one account in one currency."""
    total = Entry.objects.filter(account__code=code, currency=currency).aggregate(total=Sum("amount"))["total"]
    return total or 0


def account_balances(*, code: str) -> dict[str, int]:
    """Debit-positive balance of one account per currency: one sum on the ``(account, currency)`` index, the
    account found by its code first (a join on the code makes PostgreSQL scan every entry)."""
    account_id = Account.objects.filter(code=code).values_list("pk", flat=True).first()
    if account_id is None:
        return {}
    rows = Entry.objects.filter(account_id=account_id).order_by().values_list("currency").annotate(total=Sum("amount"))
    return {currency: total for currency, total in rows}


def account_balances_by_currency(*, account_id: int) -> list[tuple[str, int]]:
    """``[(currency, debit-positive balance)]`` of one account, by currency."""
    rows = Entry.objects.filter(account_id=account_id).values_list("currency").annotate(total=Sum("amount"))
    return list(rows.order_by("currency"))


def account_entries(*, account_id: int):
    """One account's entries with their transactions, newest first (for paging)."""
    return Entry.objects.filter(account_id=account_id).select_related("transaction").order_by("-id")


def balances_by_account(*, code_prefix: str = "") -> dict[tuple[str, str], int]:
    rows = (
        Entry.objects.filter(account__code__startswith=code_prefix)
        .values_list("account__code", "currency")
        .annotate(total=Sum("amount"))
    )
    return {(code, currency): total for code, currency, total in rows}


def trial_balance() -> dict[str, int]:
    """Sum of all entries per currency. Zero everywhere in a sound ledger."""
    rows = Entry.objects.values_list("currency").annotate(total=Sum("amount"))
    return {currency: total for currency, total in rows}


def unbalanced_transactions() -> list[tuple[int, str, int]]:
    rows = (
        Entry.objects.values_list("transaction_id", "currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
    )
    return list(rows)


def postings_count_by_key(*, keys: list[str]) -> dict[str, int]:
    rows = LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list("idempotency_key") \
        .annotate(n=Count("id"))
    return dict(rows)


def posting_keys_with_prefix(*, prefix: str, suffix: str = "") -> list[str]:
    qs = LedgerTransaction.objects.filter(idempotency_key__startswith=prefix)
    if suffix:
        qs = qs.filter(idempotency_key__endswith=suffix)
    return list(qs.values_list("idempotency_key", flat=True))


def entries_by_key(*, keys: list[str], code_prefix: str = "") -> dict[str, list[tuple[str, str, int]]]:
    """``{transaction key: [(account code, currency, amount), ...]}`` of the given postings, their entries on
    accounts under ``code_prefix`` only (in entry order)."""
    rows = (Entry.objects.filter(transaction__idempotency_key__in=keys, account__code__startswith=code_prefix)
            .order_by("id").values_list("transaction__idempotency_key", "account__code", "currency", "amount"))
    found: dict[str, list[tuple[str, str, int]]] = {}
    for key, code, currency, amount in rows:
        found.setdefault(key, []).append((code, currency, amount))
    return found


@dataclass(frozen=True)
class Posting:
    """One ledger transaction with its entries ``(account code, currency, amount)``, in entry order."""

    id: int
    idempotency_key: str
    description: str
    reference: str
    occurred_at: datetime
    entries: tuple[tuple[str, str, int], ...]


def postings_by_reference(*, references: list[str]) -> list[Posting]:
    """The postings of the given business objects (``LedgerTransaction.reference``: an order or refund id),
    oldest first, each with its entries. One statement."""
    rows = (Entry.objects.filter(transaction__reference__in=[r for r in references if r])
            .order_by("transaction__occurred_at", "transaction_id", "id")
            .values_list("transaction_id", "transaction__idempotency_key", "transaction__description",
                         "transaction__reference", "transaction__occurred_at", "account__code", "currency",
                         "amount"))
    postings: dict[int, tuple[tuple, list]] = {}
    for tx_id, key, description, reference, occurred_at, code, currency, amount in rows:
        postings.setdefault(tx_id, ((tx_id, key, description, reference, occurred_at), []))[1].append(
            (code, currency, amount))
    return [Posting(*head, entries=tuple(entries)) for head, entries in postings.values()]
