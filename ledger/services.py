"""Posting to the ledger: the only way money gets into it."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from django.db import connection, transaction
from django.utils import timezone

from core.db import array_literal, statement_parts_run
from core.money import normalize_currency
from ledger import accounts
from ledger.exceptions import LedgerError, UnbalancedTransaction, UnknownAccount
from ledger.models import Account, LedgerTransaction


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


def _accounts_ensure(codes: list[str]) -> None:
    """Open the accounts that don't exist yet, in one statement (seller payables open on first use)."""
    rows = []
    for code in codes:
        if code in accounts.FIXED_ACCOUNTS:
            rows.append((code, *accounts.FIXED_ACCOUNTS[code]))
        elif code.startswith(accounts.SELLER_PAYABLE_PREFIX):
            rows.append((code, f"Payable to seller {code.removeprefix(accounts.SELLER_PAYABLE_PREFIX)}", "liability"))
        else:
            raise UnknownAccount(code)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO ledger_account (code, name, kind, created_at)"
            " SELECT code, name, kind, now() FROM unnest(%s::text[], %s::text[], %s::text[]) AS a(code, name, kind)"
            " ON CONFLICT (code) DO NOTHING",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )


# The transaction and its entries, once every account it names exists: CTEs that run alone
# (``ledger_transaction_post``) or in a caller's statement beside other writes (``LedgerPosting``). An
# existing key inserts nothing (the posting is idempotent). The last column counts the accounts not
# opened yet: then nothing is inserted, they are opened, and the statement runs again.
_POST_CTES = """
entry AS (
    SELECT entry.currency, entry.amount, account.id AS account_id
    FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS entry(code, currency, amount)
    LEFT JOIN ledger_account account ON account.code = entry.code
), posted AS (
    INSERT INTO ledger_ledgertransaction (idempotency_key, description, reference, occurred_at, created_at)
    SELECT %s, %s, %s, %s, now() WHERE NOT EXISTS (SELECT 1 FROM entry WHERE account_id IS NULL){AFTER}
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), entries AS (
    INSERT INTO ledger_entry (transaction_id, account_id, currency, amount)
    SELECT posted.id, entry.account_id, entry.currency, entry.amount FROM posted CROSS JOIN entry
    RETURNING transaction_id
)"""
_POST_COLUMNS = ("(SELECT id FROM posted), (SELECT count(*) FROM entries),"
                 " (SELECT count(*) FROM entry WHERE account_id IS NULL)")


@dataclass(frozen=True)
class LedgerPosting:
    """A balanced posting made ready (``ledger_posting_prepare``), not yet written: its CTEs (``entry``,
    ``posted``, ``entries``), their ``params`` and the three ``columns`` it answers, for
    ``core.db.statement_parts_run`` alone or beside other writes in one statement. ``written`` is an SQL
    condition, always true, that a later part of the statement puts in its WHERE to run after the posting:
    PostgreSQL evaluates it (and so runs the posting's CTEs) once, before that part reads any row."""

    idempotency_key: str
    description: str
    reference: str
    occurred_at: datetime
    entries: tuple[EntrySpec, ...]
    params: list

    ctes: str = _POST_CTES.replace("{AFTER}", "")
    columns: ClassVar[str] = _POST_COLUMNS
    width: ClassVar[int] = 3
    written: ClassVar[str] = "(SELECT count(*) FROM entries) >= 0"

    def missing(self, row: tuple) -> bool:
        """Whether an account it names was not opened yet (then nothing was posted)."""
        return bool(row[2])

    def open_missing(self) -> None:
        _accounts_ensure(sorted({e.account_code for e in self.entries}))

    def finish(self, row: tuple) -> None:
        """Nothing: the posting is whole in the statement."""

    def check(self, row: tuple) -> None:
        """Raise ``LedgerError`` if its columns say it could not be posted (never expected)."""
        transaction_id, posted_entries, accounts_missing = row
        if accounts_missing:  # opened just now, yet not seen
            raise LedgerError(f"{self.idempotency_key}: {accounts_missing} account(s) could not be opened")
        if transaction_id is not None and posted_entries != len(self.entries):  # every account was seen
            raise LedgerError(f"{self.idempotency_key}: {posted_entries} of {len(self.entries)} entries posted")

    def result(self, row: tuple) -> tuple[LedgerTransaction, bool]:
        """``(transaction, created)`` from its columns, as ``ledger_transaction_post`` returns them."""
        self.check(row)
        transaction_id = row[0]
        if transaction_id is None:
            return LedgerTransaction.objects.get(idempotency_key=self.idempotency_key), False
        posted = LedgerTransaction(id=transaction_id, idempotency_key=self.idempotency_key,
                                   description=self.description, reference=self.reference,
                                   occurred_at=self.occurred_at)
        posted._state.adding, posted._state.db = False, "default"
        return posted, True


def ledger_posting_prepare(*, idempotency_key: str, description: str, entries: list[EntrySpec], reference: str = "",
                           occurred_at: datetime | None = None, after: str = "") -> LedgerPosting:
    """A posting checked (balanced per currency, non-zero int amounts) and made ready to write: see
    ``ledger_transaction_post``, which is this and its statement. ``after``: an SQL condition (another part's
    of the statement) the posting is written under: when it is false nothing is."""
    clean = _validate(entries)
    occurred_at = occurred_at or timezone.now()
    params = [array_literal([e.account_code for e in clean]), array_literal([e.currency for e in clean]),
              array_literal([e.amount for e in clean]), idempotency_key, description[:300], reference, occurred_at]
    return LedgerPosting(idempotency_key=idempotency_key, description=description[:300], reference=reference,
                         occurred_at=occurred_at, entries=tuple(clean), params=params,
                         ctes=_POST_CTES.replace("{AFTER}", f" AND {after}" if after else ""))


def ledger_transaction_post(
    *,
    idempotency_key: str,
    description: str,
    entries: list[EntrySpec],
    reference: str = "",
    occurred_at: datetime | None = None,
) -> tuple[LedgerTransaction, bool]:
    """Post a balanced transaction once per ``idempotency_key``: one statement once its accounts exist.

    Returns ``(transaction, created)``; a second call with the same key posts nothing
    and returns the first transaction. A concurrent twin waits for the first to commit
    (the unique key), then posts nothing.
    """
    posting = ledger_posting_prepare(idempotency_key=idempotency_key, description=description, entries=entries,
                                     reference=reference, occurred_at=occurred_at)
    [row] = statement_parts_run(posting)
    return posting.result(row)


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


@dataclass(frozen=True)
class PostingSpec:
    """One transaction of a batch (``ledger_transactions_post``)."""

    idempotency_key: str
    description: str
    entries: list[EntrySpec]
    reference: str = ""


# Many transactions and their entries in one statement, once every account they name exists (the batch
# is one JSON parameter: a client-side bound array is quoted element by element in Python, JSON is not).
# A key posted before inserts nothing, and neither do its entries: each posting stays idempotent on its own.
_POST_MANY_SQL = """
WITH posting AS (
    SELECT * FROM jsonb_to_recordset(%(postings)s::jsonb) AS p(k text, d text, r text)
), entry AS (
    SELECT e.k, e.c, e.m, e.n, account.id AS account_id
    FROM jsonb_to_recordset(%(entries)s::jsonb) AS e(k text, a text, c text, m bigint, n int)
    LEFT JOIN ledger_account account ON account.code = e.a
), posted AS (
    INSERT INTO ledger_ledgertransaction (idempotency_key, description, reference, occurred_at, created_at)
    SELECT k, d, r, %(occurred_at)s, now() FROM posting
    WHERE NOT EXISTS (SELECT 1 FROM entry WHERE account_id IS NULL)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
), entries AS (
    INSERT INTO ledger_entry (transaction_id, account_id, currency, amount)
    SELECT posted.id, entry.account_id, entry.c, entry.m
    FROM entry JOIN posted ON posted.idempotency_key = entry.k
    ORDER BY entry.n
    RETURNING transaction_id
)
SELECT array(SELECT idempotency_key FROM posted), (SELECT count(*) FROM entries),
       (SELECT count(*) FROM entry WHERE account_id IS NULL)
"""


@transaction.atomic(savepoint=False)
def ledger_transactions_post(*, postings: list[PostingSpec], occurred_at: datetime | None = None) -> set[str]:
    """Post many balanced transactions, each once per its key, in one statement (two more the first time an
    account is named): a payout run's thousands of postings. Returns the keys posted now (a key posted before
    is left as it was). PostgreSQL checks each transaction's balance at commit."""
    if not postings:
        return set()
    rows = [(p, _validate(p.entries)) for p in postings]
    if len({p.idempotency_key for p, _ in rows}) != len(rows):
        raise LedgerError("a batch names one key twice")
    params = {
        "postings": json.dumps([{"k": p.idempotency_key, "d": p.description[:300], "r": p.reference}
                                for p, _ in rows]),
        "entries": json.dumps([{"k": p.idempotency_key, "a": e.account_code, "c": e.currency, "m": e.amount, "n": n}
                               for p, clean in rows for n, e in enumerate(clean)]),
        "occurred_at": occurred_at or timezone.now()}
    with connection.cursor() as cur:
        cur.execute(_POST_MANY_SQL, params)
        posted, posted_entries, accounts_missing = cur.fetchone()
        if accounts_missing:
            _accounts_ensure(sorted({e.account_code for _, clean in rows for e in clean}))
            cur.execute(_POST_MANY_SQL, params)
            posted, posted_entries, accounts_missing = cur.fetchone()
    if accounts_missing:  # opened just now, yet not seen: never expected
        raise LedgerError(f"{accounts_missing} account(s) could not be opened")
    posted = set(posted)
    expected = sum(len(clean) for p, clean in rows if p.idempotency_key in posted)
    if posted_entries != expected:  # never expected: every account was seen
        raise LedgerError(f"{posted_entries} of {expected} entries posted")
    return posted
