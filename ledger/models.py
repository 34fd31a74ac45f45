"""Double-entry ledger. Entries are signed: debit > 0, credit < 0.

PostgreSQL enforces what matters (see migration 0002): entries and transactions are
append-only, and every transaction's entries sum to zero per currency at commit.
"""
from django.db import models

from core.money import format_money


class Account(models.Model):
    class Kind(models.TextChoices):
        ASSET = "asset"
        LIABILITY = "liability"
        EQUITY = "equity"
        REVENUE = "revenue"
        EXPENSE = "expense"

    code = models.CharField(max_length=120, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class LedgerTransaction(models.Model):
    """One business event's posting. ``idempotency_key`` names that event, once."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    description = models.CharField(max_length=300)
    reference = models.CharField(max_length=100, blank=True,
                                 help_text="The business object posted, e.g. a payment order id.")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["reference"], name="ledger_transaction_reference")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.description}"


class Entry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    # Looked up through the (account, currency) index, which leads with it.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Minor units; debit positive, credit negative.")

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_entry_amount_nonzero"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[a-z]{3}$"),
                                   name="ledger_entry_currency_iso"),
        ]
        indexes = [models.Index(fields=["account", "currency"])]

    def __str__(self) -> str:
        return f"{self.account.code} {format_money(self.amount, self.currency)}"
