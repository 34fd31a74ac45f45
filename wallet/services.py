"""Crediting and debiting wallets: exactly once per idempotency key, safe under concurrency."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from core.money import normalize_currency
from wallet.models import Wallet, WalletMovement


def _wallet_locked(*, owner_id: str, currency: str) -> Wallet:
    """Lock (creating if needed) the wallet row; concurrent movers queue on this lock."""
    wallet = Wallet.objects.select_for_update().filter(owner_id=owner_id, currency=currency).first()
    if wallet is None:
        try:
            with transaction.atomic():
                Wallet.objects.create(owner_id=owner_id, currency=currency)
        except IntegrityError:
            pass  # a concurrent first credit created it
        wallet = Wallet.objects.select_for_update().get(owner_id=owner_id, currency=currency)
    return wallet


@transaction.atomic
def wallet_move(*, owner_id: str, currency: str, amount: int, idempotency_key: str, reason: str
                ) -> tuple[WalletMovement, bool]:
    """Apply one movement. Returns ``(movement, created)``; a repeated key moves nothing."""
    if type(amount) is not int or amount == 0:
        raise ValueError(f"wallet movement must be a non-zero int, got {amount!r}")
    currency = normalize_currency(currency)
    wallet = _wallet_locked(owner_id=owner_id, currency=currency)
    existing = WalletMovement.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    movement = WalletMovement.objects.create(
        wallet=wallet, amount=amount, idempotency_key=idempotency_key, reason=reason
    )
    Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + amount)
    return movement, True


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
