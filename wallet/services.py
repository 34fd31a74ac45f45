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
from wallet.movement_sql import (
    FOLD_CTES,
    MOVE_CTES,
    ROW_MOVE_SQL,
    SLOT_CTES,
    WALLET_SLOTS,
    negative_since_sql,
)


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

@functools.cache
def _move_ctes(after: str, *, credit: bool = False) -> str:
    return (SLOT_CTES if credit else MOVE_CTES).replace("{AFTER}", f" WHERE {after}" if after else "")


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

    def finish(self, row: tuple) -> None:
        """Nothing: the movement and its balance are whole in the statement."""


@dataclass(frozen=True)
class WalletCredit(WalletMove):
    """A credit's part: its movement into a slot (``SLOT_CTES``), without the row's CTEs, which the common
    credit leaves empty (a tenth of the capture's statement in PostgreSQL). A movement no slot took (the wallet
    below zero and its slots closed, or a wallet without slots) moves the wallet's row in ``finish``: a second
    statement, in the same transaction, under the row's lock and against the whole balance, as a debit."""

    columns: ClassVar[str] = "(SELECT id FROM movement), EXISTS (SELECT 1 FROM wallet), (SELECT id FROM slot)"
    width: ClassVar[int] = 3

    def finish(self, row: tuple) -> None:
        if row[0] is not None and row[2] is None:
            with connection.cursor() as cur:
                cur.execute(ROW_MOVE_SQL, [row[0]])
                if cur.fetchone()[0] != row[0]:
                    raise RuntimeError(f"wallet movement {row[0]} moved no balance")


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
    part = WalletCredit if amount > 0 else WalletMove
    return part(owner_id=owner_id, currency=currency, amount=amount, idempotency_key=idempotency_key,
                reason=reason[:200], ctes=_move_ctes(after, credit=part is WalletCredit), params=params)


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


# One wallet's row and then its slots locked (``FOLD_CTES``' order), with its whole balance as ``l.balance``
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
), {FOLD_CTES.strip()}, balance AS (
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
