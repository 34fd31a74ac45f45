"""Crediting and debiting wallets: exactly once per idempotency key, safe under concurrency."""
from __future__ import annotations

from django.db import connection, transaction

from core.money import normalize_currency
from wallet.models import WalletMovement

# The movement and the balance in one statement. A repeated key inserts no movement, so the
# balance is not touched; the balance row is locked last, just before the commit, so that
# concurrent movers of one wallet (a hot seller) queue on it as briefly as possible. The last
# column says whether the wallet exists: it is opened on first use, and the statement run again.
_MOVE_SQL = """
WITH wallet AS (
    SELECT id FROM wallet_wallet WHERE owner_id = %s AND currency = %s
), movement AS (
    INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at)
    SELECT id, %s, %s, %s, now() FROM wallet
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, wallet_id, amount
), balance AS (
    UPDATE wallet_wallet SET balance = wallet_wallet.balance + movement.amount, updated_at = now()
    FROM movement WHERE wallet_wallet.id = movement.wallet_id
    RETURNING movement.id
)
SELECT (SELECT id FROM balance), EXISTS (SELECT 1 FROM wallet)
"""


@transaction.atomic(savepoint=False)  # no savepoint round trips inside a caller's transaction
def wallet_move(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str
                ) -> tuple[WalletMovement, bool]:
    """Apply one movement. Returns ``(movement, created)``; a repeated key moves nothing."""
    if type(amount) is not int or amount == 0:
        raise ValueError(f"wallet movement must be a non-zero int, got {amount!r}")
    currency = normalize_currency(currency)
    params = [owner_id, currency, amount, idempotency_key, reason[:200]]
    with connection.cursor() as cur:
        cur.execute(_MOVE_SQL, params)
        movement_id, wallet_exists = cur.fetchone()
        if not wallet_exists:
            # Open the wallet on first use. Its own statement, so that the next one sees it even
            # when a concurrent first mover committed it while this one waited.
            cur.execute("INSERT INTO wallet_wallet (owner_id, currency, balance, updated_at)"
                        " VALUES (%s, %s, 0, now()) ON CONFLICT (owner_id, currency) DO NOTHING", [owner_id, currency])
            cur.execute(_MOVE_SQL, params)
            movement_id, wallet_exists = cur.fetchone()
    if movement_id is None:
        return WalletMovement.objects.get(idempotency_key=idempotency_key), False
    return WalletMovement(id=movement_id, amount=amount, idempotency_key=idempotency_key, reason=reason[:200]), True


def wallet_credit(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str
                  ) -> tuple[WalletMovement, bool]:
    if amount <= 0:
        raise ValueError("a credit is positive")
    return wallet_move(owner_id=owner_id, currency=currency, amount=amount,
                       idempotency_key=idempotency_key, reason=reason)


def wallet_debit(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str
                 ) -> tuple[WalletMovement, bool]:
    if amount <= 0:
        raise ValueError("a debit amount is given positive")
    return wallet_move(owner_id=owner_id, currency=currency, amount=-amount,
                       idempotency_key=idempotency_key, reason=reason)
