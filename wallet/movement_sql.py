"""The SQL of a wallet's movements (``wallet.services``): a credit into a slot, the wallet's row moved and its
slots folded, and the negative episode kept in step."""
from __future__ import annotations

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
FOLD_CTES = """
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
# takes the wallet's row and its slots and folds them (``ROW_CTES``: ``locked``, ``FOLD_CTES``,
# ``balance``), where the negative episode is kept against the whole balance. Either lock is taken last, just
# before the commit. The last column says whether the wallet exists: it is opened on first use, and the
# statement run again.
SLOT_CTES = """
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
)"""
ROW_CTES = """
locked AS MATERIALIZED (
    SELECT w.id, w.balance, movement.amount FROM wallet_wallet w JOIN movement ON w.id = movement.wallet_id
    {UNSLOTTED} FOR NO KEY UPDATE OF w
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


SLOT_CTES = SLOT_CTES.replace("{SLOTS}", str(WALLET_SLOTS)).strip()
ROW_CTES = ROW_CTES.replace("{FOLD}", FOLD_CTES.strip()).replace("{NEGATIVE_SINCE}", negative_since_sql(
    wallet="wallet_wallet", amount="movement.amount", movement_id="movement.id",
    before="(wallet_wallet.balance + COALESCE(slotted.total, 0))")).strip()
MOVE_CTES = f"{SLOT_CTES}, {ROW_CTES.replace('{UNSLOTTED}', 'WHERE NOT EXISTS (SELECT 1 FROM slot)')}"
# The wallet's row moved by a credit its statement inserted but no slot took (``WalletCredit.finish``).
ROW_MOVE_SQL = (f"WITH movement AS (SELECT id, wallet_id, amount FROM wallet_walletmovement WHERE id = %s),"
                f" {ROW_CTES.replace('{UNSLOTTED}', '')} SELECT (SELECT id FROM balance)")
