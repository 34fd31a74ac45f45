from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils import timezone

from wallet.models import Wallet, WalletMovement


def wallet_balance(*, owner_id: str, currency: str) -> int:
    """The wallet's balance (its row's and its slots'), 0 when it has none."""
    wallet = Wallet.objects.with_total().filter(owner_id=owner_id, currency=currency).first()
    return wallet.total if wallet else 0


def wallet_balances() -> dict[tuple[str, str], int]:
    """Every wallet's cached balance (its row's and its slots', one snapshot), by (owner, currency)."""
    return {(owner, currency): total for owner, currency, total
            in Wallet.objects.with_total().values_list("owner_id", "currency", "total")}


def wallet_movement_sums() -> dict[tuple[str, str], int]:
    """Every wallet's balance recomputed from its movements."""
    rows = WalletMovement.objects.values_list("wallet__owner_id", "wallet__currency").annotate(total=Sum("amount"))
    return {(owner, currency): total for owner, currency, total in rows}


@dataclass(frozen=True)
class WalletBuckets:
    """One wallet's balance split by when it can be paid out (minor units). ``available`` may be negative:
    a refund or a dispute took more than was free."""

    owner_id: str
    currency: str
    total: int
    pending: int  # held credits (less their reserve) still in their hold
    reserved: int  # the reserve of held credits, still in its own hold

    @property
    def available(self) -> int:
        return self.total - self.pending - self.reserved


_HELD = """
COALESCE(SUM(m.amount - m.reserve_amount) FILTER (WHERE m.hold_until > %(t)s), 0)::bigint,
COALESCE(SUM(m.reserve_amount) FILTER (WHERE m.reserve_until > %(t)s), 0)::bigint"""
#: A wallet ``w``'s whole cached balance: its row's and its slots' (``wallet.models.WalletSlot``).
WALLET_TOTAL = ("(w.balance + COALESCE((SELECT SUM(s.balance) FROM wallet_walletslot s WHERE s.wallet_id = w.id),"
                " 0))::bigint")
# Now: the cached balance and the movements still held (the partial index ``wallet_movement_held``).
_BUCKETS_NOW = f"""
SELECT w.owner_id, w.currency, {WALLET_TOTAL}::bigint, {_HELD}
FROM wallet_wallet w
LEFT JOIN wallet_walletmovement m ON m.wallet_id = w.id AND m.reserve_until > %(t)s
WHERE w.owner_id = %(owner)s GROUP BY w.id ORDER BY w.currency"""
# A past moment: every movement written by then.
_BUCKETS_AS_OF = f"""
SELECT w.owner_id, w.currency, COALESCE(SUM(m.amount), 0)::bigint, {_HELD}
FROM wallet_wallet w
JOIN wallet_walletmovement m ON m.wallet_id = w.id AND m.created_at <= %(t)s
WHERE w.owner_id = %(owner)s GROUP BY w.id ORDER BY w.currency"""


def wallet_buckets(*, owner_id: str, as_of: datetime | None = None) -> list[WalletBuckets]:
    """The owner's wallets split into pending, reserved and available, per currency, now or ``as_of`` a
    past moment (then from the movements written by that moment: what the wallet said then)."""
    sql = _BUCKETS_NOW if as_of is None else _BUCKETS_AS_OF
    with connection.cursor() as cur:
        cur.execute(sql, {"owner": owner_id, "t": as_of or timezone.now()})
        return [WalletBuckets(*row) for row in cur.fetchall()]


def wallet_held_movements(*, as_of: datetime) -> list[tuple[str, str, str, int]]:
    """``(owner, currency, idempotency key, amount)`` of every credit still (partly) held at ``as_of``: what
    the pending and reserved buckets are made of."""
    with connection.cursor() as cur:
        cur.execute("SELECT w.owner_id, w.currency, m.idempotency_key, m.amount FROM wallet_walletmovement m"
                    " JOIN wallet_wallet w ON w.id = m.wallet_id WHERE m.reserve_until > %s ORDER BY m.id", [as_of])
        return cur.fetchall()


def wallets_available(*, as_of: datetime, owner_ids: list[str] | None = None
                      ) -> list[tuple[str, str, int]]:
    """``(owner, currency, available)`` of every wallet holding money or owing it (balance not zero), ordered
    by owner and currency: what a payout run looks at. One statement over the still-held movements."""
    owners = "" if owner_ids is None else "AND w.owner_id = ANY(%(owners)s)"
    with connection.cursor() as cur:
        cur.execute(f"""
SELECT w.owner_id, w.currency, ({WALLET_TOTAL} - COALESCE(h.held, 0))::bigint
FROM wallet_wallet w
LEFT JOIN (
    SELECT wallet_id, COALESCE(SUM(m.amount - m.reserve_amount) FILTER (WHERE m.hold_until > %(t)s), 0)
                      + COALESCE(SUM(m.reserve_amount) FILTER (WHERE m.reserve_until > %(t)s), 0) AS held
    FROM wallet_walletmovement m WHERE m.reserve_until > %(t)s GROUP BY wallet_id
) h ON h.wallet_id = w.id
WHERE {WALLET_TOTAL} <> 0 {owners}
ORDER BY w.owner_id, w.currency""", {"t": as_of, "owners": owner_ids})
        return cur.fetchall()


def movement_amounts_by_key(*, keys: list[str]) -> dict[str, tuple[str, int]]:
    """``{idempotency key: (owner, amount)}`` of the given movements."""
    rows = WalletMovement.objects.filter(idempotency_key__in=keys).values_list(
        "idempotency_key", "wallet__owner_id", "amount")
    return {key: (owner, amount) for key, owner, amount in rows}


def wallet_movements(*, owner_id: str) -> QuerySet[WalletMovement]:
    """The owner's movements in every currency, newest first (ties by id: one transaction's movements
    share their moment)."""
    return (WalletMovement.objects.filter(wallet__owner_id=owner_id).select_related("wallet")
            .order_by("-created_at", "-id"))


def wallets_negative(*, since_before: datetime | None = None) -> list[tuple[str, str, int, datetime]]:
    """``(owner, currency, balance, negative since)`` of every wallet below zero (only those negative since
    before ``since_before``, when given), the oldest debt first."""
    wallets = Wallet.objects.with_total().filter(total__lt=0, negative_since__isnull=False)
    if since_before is not None:
        wallets = wallets.filter(negative_since__lt=since_before)
    return list(wallets.order_by("negative_since", "id").values_list("owner_id", "currency", "total",
                                                                     "negative_since"))


def wallet_movements_of(*, wallet_id: int):
    """One wallet's movements, newest first (for paging)."""
    return WalletMovement.objects.filter(wallet_id=wallet_id).order_by("-id")
