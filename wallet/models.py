"""Sellers' wallets: a balance per owner and currency, and the append-only movements behind it."""
from django.db import models

from core.money import format_money


class Wallet(models.Model):
    owner_id = models.CharField(max_length=40, help_text="The seller's id.")
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0, help_text="Minor units; the sum of the movements.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner_id", "currency"], name="wallet_one_per_owner_currency")
        ]
        ordering = ["owner_id", "currency"]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.currency}"


class WalletMovement(models.Model):
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="movements")
    amount = models.BigIntegerField(help_text="Minor units; credit positive, debit negative.")
    idempotency_key = models.CharField(max_length=200, unique=True)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="wallet_movement_nonzero")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.wallet} {'+' if self.amount > 0 else ''}{format_money(self.amount, self.wallet.currency)}"
