"""Crediting and debiting wallets: exactly once per idempotency key, safe under concurrency.

A credit may be *held* (``Hold``): its amount less a reserve is pending for a while, the reserve for
longer; ``wallet_credit`` holds every credit by the payout settings (``PAYOUT_HOLD_DAYS``,
``PAYOUT_RESERVE_BPS``, ``PAYOUT_RESERVE_DAYS``), as of the moment it is written.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.db import connection, transaction

from core.db import statement_parts_run
from core.money import normalize_currency
from wallet.models import WalletMovement


@dataclass(frozen=True)
class Hold:
    """How long a credit is pending (seconds), the part of it reserved, and how long that stays reserved
    (seconds from the credit, at least ``seconds``)."""

    seconds: float
    reserve_amount: int = 0
    reserve_seconds: float = 0.0


def payout_hold(amount: int) -> Hold:
    """The hold the payout settings put on a credit of ``amount``: the reserve is rounded down (in the
    seller's favour) and released no earlier than the rest."""
    seconds = settings.PAYOUT_HOLD_DAYS * 86_400
    return Hold(seconds=seconds, reserve_amount=amount * settings.PAYOUT_RESERVE_BPS // 10_000,
                reserve_seconds=max(seconds, settings.PAYOUT_RESERVE_DAYS * 86_400))

#: Slots opened with each wallet (``WalletSlot``): credits outside a negative episode land in the first one no
#: concurrent credit holds, so a hot seller's captures do not queue on one row through each commit.
WALLET_SLOTS = 8

# Taking a wallet's row and then its slots, in that order (as every writer and locking reader does, so that
# none deadlocks another; a credit into a slot takes that slot alone): ``locked`` is the caller's CTE of the rows
# taken (``id``, ``balance`` as taken, the ``amount`` moved), ``slots`` their slots as they are once taken,
# ``folded`` empties them into the rows (the caller's UPDATE adds ``slotted.total``) and opens them to credits
# only when the wallet is not below zero after the movement: a credit that waited on a slot sees it closed
# when it gets it (PostgreSQL rechecks the row) and takes the wallet's row instead, where the episode is kept.
# Rows are taken FOR NO KEY UPDATE: a credit's movement checks its foreign key to the wallet at its commit
# (Django's constraints are deferred) with FOR KEY SHARE, which FOR UPDATE would block while that credit holds
# the slot the locker waits for: a deadlock.
_FOLD_CTES = """
slots AS MATERIALIZED (
    SELECT s.id, s.wallet_id, s.balance, s.open FROM wallet_walletslot s
    WHERE s.wallet_id IN (SELECT id FROM locked) ORDER BY s.id FOR NO KEY UPDATE
), slotted AS (
    SELECT wallet_id, SUM(balance)::bigint AS total FROM slots GROUP BY wallet_id
), folded AS (
    UPDATE wallet_walletslot SET balance = 0, open = after.open
    FROM slots JOIN (SELECT l.id, l.balance + COALESCE(t.total, 0) + l.amount >= 0 AS open
                     FROM locked l LEFT JOIN slotted t ON t.wallet_id = l.id) after ON after.id = slots.wallet_id
    WHERE wallet_walletslot.id = slots.id AND (slots.balance <> 0 OR slots.open <> after.open)
)"""

# The movement and the balance: CTEs that run alone (``wallet_move``) or in a caller's statement after
# other writes (``WalletMove``, ``after``). A repeated key inserts no movement, so nothing is touched.
# A credit goes into a free open slot (``free_slot``; when every slot is held, it queues on one, ``busy_slot``);
# anything else (a debit, a credit while the wallet is below zero and its slots closed, a wallet without slots)
# takes the wallet's row and its slots and folds them (``locked``, ``_FOLD_CTES``,
# ``balance``), where the negative episode is kept against the whole balance. Either lock is taken last, just
# before the commit. The last column says whether the wallet exists: it is opened on first use, and the
# statement run again.
_MOVE_CTES = """
wallet AS (
    SELECT id FROM wallet_wallet WHERE owner_id = %s AND currency = %s
), movement AS (
    INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at, hold_until,
                                       reserve_amount, reserve_until)
    SELECT id, %s, %s, %s, now(), now() + make_interval(secs => %s::float8), %s::bigint,
           now() + make_interval(secs => %s::float8)
    FROM wallet{AFTER}
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, wallet_id, amount
), free_slot AS MATERIALIZED (
    SELECT s.id FROM wallet_walletslot s JOIN movement ON s.wallet_id = movement.wallet_id
    WHERE movement.amount > 0 AND s.open
    ORDER BY s.slot LIMIT 1 FOR NO KEY UPDATE OF s SKIP LOCKED
), busy_slot AS MATERIALIZED (
    SELECT s.id FROM wallet_walletslot s JOIN movement ON s.wallet_id = movement.wallet_id
    WHERE movement.amount > 0 AND s.open AND NOT EXISTS (SELECT 1 FROM free_slot)
      AND s.slot = movement.id %% {SLOTS}
    FOR NO KEY UPDATE OF s
), slot AS (
    UPDATE wallet_walletslot SET balance = wallet_walletslot.balance + movement.amount
    FROM (SELECT id FROM free_slot UNION ALL SELECT id FROM busy_slot) picked, movement
    WHERE wallet_walletslot.id = picked.id
    RETURNING movement.id
), locked AS MATERIALIZED (
    SELECT w.id, w.balance, movement.amount FROM wallet_wallet w JOIN movement ON w.id = movement.wallet_id
    WHERE NOT EXISTS (SELECT 1 FROM slot) FOR NO KEY UPDATE OF w
), {FOLD}, balance AS (
    UPDATE wallet_wallet SET balance = wallet_wallet.balance + COALESCE(slotted.total, 0) + movement.amount,
        updated_at = now(), {NEGATIVE_SINCE}
    FROM movement LEFT JOIN slotted ON slotted.wallet_id = movement.wallet_id
    WHERE wallet_wallet.id = movement.wallet_id AND wallet_wallet.id IN (SELECT id FROM locked)
    RETURNING movement.id
)"""


def negative_since_sql(*, wallet: str, amount: str, movement_id: str, before: str = "") -> str:
    """The SET clauses that keep ``negative_since`` and ``negative_since_movement_id`` in step with a balance
    moved by ``amount`` (SQL expressions, the table of wallets named ``wallet``; ``before``: the whole balance
    before the movement, by default the row's). A negative episode starts with the movement that takes the
    balance below zero and ends with the one that brings it back to zero or above (SET sees the row as it was)."""
    before = before or f"{wallet}.balance"
    after = f"{before} + {amount}"
    return (f"negative_since = CASE WHEN {after} >= 0 THEN NULL WHEN {before} >= 0 THEN now()"
            f" ELSE {wallet}.negative_since END,"
            f" negative_since_movement_id = CASE WHEN {after} >= 0 THEN NULL WHEN {before} >= 0"
            f" THEN {movement_id} ELSE {wallet}.negative_since_movement_id END")


_MOVE_CTES = _MOVE_CTES.replace("{SLOTS}", str(WALLET_SLOTS)).replace("{FOLD}", _FOLD_CTES.strip())
_MOVE_CTES = _MOVE_CTES.replace("{NEGATIVE_SINCE}", negative_since_sql(
    wallet="wallet_wallet", amount="movement.amount", movement_id="movement.id",
    before="(wallet_wallet.balance + COALESCE(slotted.total, 0))"))


@functools.cache
def _move_ctes(after: str) -> str:
    return _MOVE_CTES.replace("{AFTER}", f" WHERE {after}" if after else "")


_OPEN_SQL = """
WITH opened AS (
    INSERT INTO wallet_wallet (owner_id, currency, balance, updated_at) VALUES (%s, %s, 0, now())
    ON CONFLICT (owner_id, currency) DO NOTHING RETURNING id
)
INSERT INTO wallet_walletslot (wallet_id, slot, balance, open)
SELECT id, n, 0, true FROM opened, generate_series(0, %s) n"""


@dataclass(frozen=True)
class WalletMove:
    """A movement made ready (``wallet_move_prepare``), not yet written: its CTEs (``wallet``, ``movement``,
    ``balance``), their ``params`` and the two ``columns`` it answers, for ``core.db.statement_parts_run``
    alone or after other writes in one statement."""

    owner_id: str
    currency: str
    amount: int
    idempotency_key: str
    reason: str
    ctes: str
    params: list

    columns: ClassVar[str] = ("COALESCE((SELECT id FROM slot), (SELECT id FROM balance)),"
                              " EXISTS (SELECT 1 FROM wallet)")
    width: ClassVar[int] = 2

    def missing(self, row: tuple) -> bool:
        """Whether the wallet did not exist yet (then nothing moved)."""
        return not row[1]

    def open_missing(self) -> None:
        """Open the wallet (and its slots) on first use. Its own statement, so that the next one sees it even
        when a concurrent first mover committed it while this one waited."""
        with connection.cursor() as cur:
            cur.execute(_OPEN_SQL, [self.owner_id, self.currency, WALLET_SLOTS - 1])

    def result(self, row: tuple) -> tuple[WalletMovement, bool]:
        """``(movement, created)`` from its columns, as ``wallet_move`` returns them."""
        if row[0] is None:
            return WalletMovement.objects.get(idempotency_key=self.idempotency_key), False
        return WalletMovement(id=row[0], amount=self.amount, idempotency_key=self.idempotency_key,
                              reason=self.reason), True


def wallet_move_prepare(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str,
                        hold: Hold | None = None, after: str = "") -> WalletMove:
    """A movement checked and made ready to write: see ``wallet_move``, which is this and its statement.
    ``after``: an SQL condition (another part's, e.g. ``LedgerPosting.written``) the movement is inserted
    under, so that it runs after that part's writes."""
    if type(amount) is not int or amount == 0:
        raise ValueError(f"wallet movement must be a non-zero int, got {amount!r}")
    if hold is not None and (amount < 0 or not 0 <= hold.reserve_amount <= amount
                             or not 0 <= hold.seconds <= hold.reserve_seconds):
        raise ValueError(f"a hold is on a credit, its reserve within it and released last: {hold!r}")
    currency = normalize_currency(currency)
    params = [owner_id, currency, amount, idempotency_key, reason[:200],
              None if hold is None else hold.seconds, 0 if hold is None else hold.reserve_amount,
              None if hold is None else hold.reserve_seconds]
    return WalletMove(owner_id=owner_id, currency=currency, amount=amount, idempotency_key=idempotency_key,
                      reason=reason[:200], ctes=_move_ctes(after), params=params)


def _run(move: WalletMove) -> tuple[WalletMovement, bool]:
    [row] = statement_parts_run(move)
    return move.result(row)


def wallet_move(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str,
                hold: Hold | None = None) -> tuple[WalletMovement, bool]:
    """Apply one movement. Returns ``(movement, created)``; a repeated key moves nothing. ``hold``: a
    credit pending (and partly reserved) for a while; without it the movement counts at once."""
    move = wallet_move_prepare(owner_id=owner_id, currency=currency, amount=amount, idempotency_key=idempotency_key,
                               reason=reason, hold=hold)
    return _run(move)


def wallet_credit_prepare(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str,
                          held: bool = True, after: str = "") -> WalletMove:
    """``wallet_credit`` made ready to write (``wallet_move_prepare``)."""
    if amount <= 0:
        raise ValueError("a credit is positive")
    return wallet_move_prepare(owner_id=owner_id, currency=currency, amount=amount, idempotency_key=idempotency_key,
                               reason=reason, hold=payout_hold(amount) if held else None, after=after)


def wallet_credit(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str,
                  held: bool = True) -> tuple[WalletMovement, bool]:
    """A credit, held by the payout settings (``payout_hold``) unless ``held=False`` (money given back)."""
    move = wallet_credit_prepare(owner_id=owner_id, currency=currency, amount=amount, idempotency_key=idempotency_key,
                                 reason=reason, held=held)
    return _run(move)


def wallet_debit(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str
                 ) -> tuple[WalletMovement, bool]:
    if amount <= 0:
        raise ValueError("a debit amount is given positive")
    return wallet_move(owner_id=owner_id, currency=currency, amount=-amount,
                       idempotency_key=idempotency_key, reason=reason)


# One wallet's row and then its slots locked (``_FOLD_CTES``' order), with its whole balance as ``l.balance``
# (the slots are left as they are: the next movement folds them). A negative episode recorded on the row may
# have ended in a slot (a credit that saw the row before the episode began): read it against the whole balance.
_LOCK_SQL = """
WITH locked AS MATERIALIZED (
    SELECT id, balance, negative_since, negative_since_movement_id FROM wallet_wallet
    WHERE owner_id = %s AND currency = %s FOR NO KEY UPDATE
), slots AS MATERIALIZED (
    SELECT s.balance FROM wallet_walletslot s WHERE s.wallet_id IN (SELECT id FROM locked)
    ORDER BY s.id FOR NO KEY UPDATE
), l AS (
    SELECT id, (balance + (SELECT COALESCE(SUM(balance), 0) FROM slots))::bigint AS balance, negative_since,
           negative_since_movement_id FROM locked
)
SELECT {columns} FROM l"""


def wallet_available_locked(*, owner_id: str, currency: str, as_of: datetime) -> int:
    """Lock the wallet (until the caller's transaction ends) and return what is available in it at ``as_of``:
    its balance less what is still pending or reserved. 0 when it has no wallet. For a payout, so that no
    concurrent movement changes the amount between the look and the debit."""
    with connection.cursor() as cur:
        cur.execute(_LOCK_SQL.format(columns="l.id, l.balance"), [owner_id, normalize_currency(currency)])
        row = cur.fetchone()
        if row is None:
            return 0
        cur.execute("SELECT (COALESCE(SUM(amount - reserve_amount) FILTER (WHERE hold_until > %(t)s), 0)"
                    " + COALESCE(SUM(reserve_amount) FILTER (WHERE reserve_until > %(t)s), 0))::bigint"
                    " FROM wallet_walletmovement WHERE wallet_id = %(w)s AND reserve_until > %(t)s",
                    {"w": row[0], "t": as_of})
        return row[1] - cur.fetchone()[0]


@dataclass(frozen=True)
class NegativeEpisode:
    """A wallet below zero: how much it owes (positive minor units), since when, and the movement that took
    it below zero (which names the episode)."""

    owner_id: str
    currency: str
    owed: int
    since: datetime
    movement_id: int


def wallet_negative_locked(*, owner_id: str, currency: str) -> NegativeEpisode | None:
    """Lock the wallet (until the caller's transaction ends) and return its negative episode, or ``None``
    when its balance is not below zero (or it has no wallet)."""
    with connection.cursor() as cur:
        cur.execute(_LOCK_SQL.format(columns="l.balance, l.negative_since, l.negative_since_movement_id"),
                    [owner_id, normalize_currency(currency)])
        row = cur.fetchone()
    if row is None or row[0] >= 0:
        return None
    return NegativeEpisode(owner_id=owner_id, currency=normalize_currency(currency), owed=-row[0], since=row[1],
                           movement_id=row[2])


_HELD_SUM = ("COALESCE(SUM(m.amount - m.reserve_amount) FILTER (WHERE m.hold_until > %(t)s), 0)"
             " + COALESCE(SUM(m.reserve_amount) FILTER (WHERE m.reserve_until > %(t)s), 0)")
_AVAILABLE_LOCKED_SQL = f"""
WITH locked AS MATERIALIZED (
    SELECT w.id, w.owner_id, w.currency, w.balance
    FROM wallet_wallet w
    JOIN jsonb_to_recordset(%(wallets)s::jsonb) AS x(o text, c text) ON w.owner_id = x.o AND w.currency = x.c
    ORDER BY w.id FOR NO KEY UPDATE OF w
), slots AS MATERIALIZED (
    SELECT s.wallet_id, s.balance FROM wallet_walletslot s WHERE s.wallet_id IN (SELECT id FROM locked)
    ORDER BY s.id FOR NO KEY UPDATE
), slotted AS (
    SELECT wallet_id, SUM(balance)::bigint AS total FROM slots GROUP BY wallet_id
), held AS (
    SELECT m.wallet_id, {_HELD_SUM} AS held FROM wallet_walletmovement m
    WHERE m.wallet_id IN (SELECT id FROM locked) AND m.reserve_until > %(t)s GROUP BY m.wallet_id
)
SELECT l.owner_id, l.currency, (l.balance + COALESCE(slotted.total, 0) - COALESCE(held.held, 0))::bigint
FROM locked l LEFT JOIN held ON held.wallet_id = l.id LEFT JOIN slotted ON slotted.wallet_id = l.id"""


def wallets_available_locked(*, wallets: list[tuple[str, str]], as_of: datetime) -> dict[tuple[str, str], int]:
    """``wallet_available_locked`` for many wallets in one statement: each ``(owner, currency)`` locked (in id
    order, so two callers cannot deadlock) until the caller's transaction ends, with what is available in it
    at ``as_of``. A wallet that does not exist is left out."""
    if not wallets:
        return {}
    with connection.cursor() as cur:
        cur.execute(_AVAILABLE_LOCKED_SQL, {"wallets": json.dumps([{"o": o, "c": normalize_currency(c)}
                                                                   for o, c in wallets]), "t": as_of})
        return {(owner, currency): available for owner, currency, available in cur.fetchall()}


@dataclass(frozen=True)
class Debit:
    owner_id: str
    currency: str
    amount: int  # positive: taken out of the wallet
    idempotency_key: str
    reason: str


_DEBIT_MANY_SQL = f"""
WITH debit AS (  -- one JSON parameter: see ledger.services._POST_MANY_SQL
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS d(owner_id text, currency text, amount bigint,
                                                     idempotency_key text, reason text)
), movement AS (
    INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at, reserve_amount)
    SELECT w.id, -d.amount, d.idempotency_key, d.reason, now(), 0
    FROM debit d JOIN wallet_wallet w ON w.owner_id = d.owner_id AND w.currency = d.currency
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, wallet_id, amount
), locked AS MATERIALIZED (
    SELECT w.id, w.balance, m.amount FROM wallet_wallet w JOIN movement m ON w.id = m.wallet_id
    ORDER BY w.id FOR NO KEY UPDATE OF w
), {_FOLD_CTES.strip()}, balance AS (
    UPDATE wallet_wallet w SET balance = w.balance + COALESCE(t.total, 0) + m.amount, updated_at = now(),
        {negative_since_sql(wallet="w", amount="m.amount", movement_id="m.id",
                            before="(w.balance + COALESCE(t.total, 0))")}
    FROM movement m LEFT JOIN slotted t ON t.wallet_id = m.wallet_id WHERE w.id = m.wallet_id
    RETURNING m.id
)
SELECT (SELECT count(*) FROM balance), (SELECT count(*) FROM debit d JOIN wallet_wallet w
                                        ON w.owner_id = d.owner_id AND w.currency = d.currency)
"""


@transaction.atomic(savepoint=False)
def wallets_debit(*, debits: list[Debit]) -> int:
    """``wallet_debit`` of many wallets in one statement, at most one debit per wallet (a payout run's: one
    payout per seller and currency); each once per its key. The wallets exist (money is taken out of them).
    Returns how many were debited now."""
    if not debits:
        return 0
    if any(type(d.amount) is not int or d.amount <= 0 for d in debits):
        raise ValueError("a debit amount is given positive")
    if len({(d.owner_id, normalize_currency(d.currency)) for d in debits}) != len(debits):
        raise ValueError("one debit per wallet in a batch")  # UPDATE ... FROM would apply only one of them
    with connection.cursor() as cur:
        cur.execute(_DEBIT_MANY_SQL, [json.dumps([
            {"owner_id": d.owner_id, "currency": normalize_currency(d.currency), "amount": d.amount,
             "idempotency_key": d.idempotency_key, "reason": d.reason[:200]} for d in debits])])
        debited, found = cur.fetchone()
    if found != len(debits):
        raise ValueError(f"{len(debits) - found} of the wallets to debit do not exist")
    return debited
