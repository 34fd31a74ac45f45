"""Posting to the ledger: the only way money gets into it."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.money import normalize_currency
from ledger import accounts
from ledger.exceptions import LedgerError, UnbalancedTransaction, UnknownAccount
from ledger.models import Account, Entry, LedgerTransaction


@dataclass(frozen=True)
class EntrySpec:
    account_code: str
    currency: str
    amount: int  # minor units, debit positive, credit negative


def _validate(entries: list[EntrySpec]) -> list[EntrySpec]:
    if len(entries) < 2:
        raise UnbalancedTransaction("a transaction needs at least two entries")
    totals: dict[str, int] = defaultdict(int)
    clean = []
    for entry in entries:
        if type(entry.amount) is not int or entry.amount == 0:
            raise LedgerError(f"entry amount must be a non-zero int, got {entry.amount!r}")
        currency = normalize_currency(entry.currency)
        totals[currency] += entry.amount
        clean.append(EntrySpec(entry.account_code, currency, entry.amount))
    unbalanced = {c: t for c, t in totals.items() if t}
    if unbalanced:
        raise UnbalancedTransaction(f"entries do not balance per currency: {unbalanced}")
    return clean


def ledger_account_get(*, code: str) -> Account:
    """The account for ``code``; seller payables are opened on first use."""
    if code in accounts.FIXED_ACCOUNTS:
        name, kind = accounts.FIXED_ACCOUNTS[code]
    elif code.startswith(accounts.SELLER_PAYABLE_PREFIX):
        name, kind = f"Payable to seller {code.removeprefix(accounts.SELLER_PAYABLE_PREFIX)}", "liability"
    else:
        raise UnknownAccount(code)
    account, _ = Account.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})
    return account


@transaction.atomic
def ledger_transaction_post(
    *,
    idempotency_key: str,
    description: str,
    entries: list[EntrySpec],
    reference: str = "",
    occurred_at: datetime | None = None,
) -> tuple[LedgerTransaction, bool]:
    """Post a balanced transaction once per ``idempotency_key``.

    Returns ``(transaction, created)``; a second call with the same key posts nothing
    and returns the first transaction.
    """
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    clean = _validate(entries)
    account_ids = {code: ledger_account_get(code=code).pk for code in sorted({e.account_code for e in clean})}
    try:
        with transaction.atomic():
            posted = LedgerTransaction.objects.create(
                idempotency_key=idempotency_key,
                description=description[:300],
                reference=reference,
                occurred_at=occurred_at or timezone.now(),
            )
    except IntegrityError:  # a concurrent twin posted it first
        return LedgerTransaction.objects.get(idempotency_key=idempotency_key), False
    Entry.objects.bulk_create(
        Entry(transaction=posted, account_id=account_ids[e.account_code], currency=e.currency, amount=e.amount)
        for e in clean
    )
    return posted, True


def ledger_transaction_reverse(*, original_key: str, idempotency_key: str, description: str,
                               reference: str = "") -> tuple[LedgerTransaction, bool]:
    """Post the exact opposite of an earlier transaction: the ledger's only correction."""
    original = LedgerTransaction.objects.prefetch_related("entries__account").get(idempotency_key=original_key)
    return ledger_transaction_post(
        idempotency_key=idempotency_key,
        description=description,
        reference=reference or original.reference,
        entries=[EntrySpec(e.account.code, e.currency, -e.amount) for e in original.entries.all()],
    )
