from django.db.models import Sum

from wallet.models import Wallet, WalletMovement


def wallet_balance(*, owner_id: str, currency: str) -> int:
    wallet = Wallet.objects.filter(owner_id=owner_id, currency=currency).first()
    return wallet.balance if wallet else 0


def wallet_balances() -> dict[tuple[str, str], int]:
    """Every wallet's cached balance, by (owner, currency)."""
    return {(w.owner_id, w.currency): w.balance for w in Wallet.objects.all()}


def wallet_movement_sums() -> dict[tuple[str, str], int]:
    """Every wallet's balance recomputed from its movements."""
    rows = WalletMovement.objects.values_list("wallet__owner_id", "wallet__currency").annotate(total=Sum("amount"))
    return {(owner, currency): total for owner, currency, total in rows}


def movement_amounts_by_key(*, keys: list[str]) -> dict[str, tuple[str, int]]:
    """``{idempotency key: (owner, amount)}`` of the given movements."""
    rows = WalletMovement.objects.filter(idempotency_key__in=keys).values_list(
        "idempotency_key", "wallet__owner_id", "amount")
    return {key: (owner, amount) for key, owner, amount in rows}
