"""Sellers' wallets: a balance per owner and currency, and the append-only movements behind it."""
from django.db import models
from django.db.models.functions import Cast, Coalesce

from core.money import format_money


class WalletQuerySet(models.QuerySet):
    def with_total(self) -> "WalletQuerySet":
        """Each wallet annotated ``total``: its balance, its row's and its slots' (``WalletSlot``)."""
        slots = (WalletSlot.objects.filter(wallet=models.OuterRef("pk")).order_by().values("wallet")
                 .annotate(s=models.Sum("balance")).values("s"))
        total = models.F("balance") + Coalesce(models.Subquery(slots, output_field=models.BigIntegerField()), 0)
        return self.annotate(total=Cast(total, models.BigIntegerField()))


class Wallet(models.Model):
    """A seller's balance in one currency: ``balance`` on this row plus the credits its slots hold
    (``WalletSlot``); ``WalletQuerySet.with_total`` and ``wallet.selectors`` read the sum."""

    owner_id = models.CharField(max_length=40, help_text="The seller's id.")
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0, help_text="Minor units; the sum of the movements.")
    updated_at = models.DateTimeField(auto_now=True, help_text="The last movement.")
    # Kept by the statement that moves the balance (``wallet.services``): a negative balance's age, and the
    # movement that took it below zero, which names the episode (a write-off is posted once per episode).
    negative_since = models.DateTimeField(null=True, blank=True,
                                          help_text="Since when the balance is below zero (null: it is not).")
    negative_since_movement_id = models.BigIntegerField(
        null=True, blank=True, help_text="The movement that took the balance below zero (null: it is not).")

    objects = WalletQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner_id", "currency"], name="wallet_one_per_owner_currency")
        ]
        indexes = [models.Index(fields=["negative_since"], name="wallet_negative",
                                condition=models.Q(negative_since__isnull=False))]
        ordering = ["owner_id", "currency"]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.currency}"


class WalletSlot(models.Model):
    """A share of a wallet's balance that credits land in without taking the wallet's row (issue #8: a hot
    seller's captures would queue on that one row until each commit). A credit adds to the first open slot no
    concurrent credit holds (``SKIP LOCKED``), queueing on one when all are held; every other movement takes
    the row and then its slots and folds them into the row, closing them while the wallet is below zero; a
    reader that locks the wallet takes both (``wallet.services``). Only credits land here: never below zero."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="slots", db_index=False)
    slot = models.PositiveSmallIntegerField()
    balance = models.BigIntegerField(default=0, help_text="Minor units credited here, not yet folded into the row.")
    open = models.BooleanField(default=True, help_text="Whether credits may land here: not while the wallet is "
                                                      "below zero (its episode is kept on its row).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "slot"], name="wallet_slot_one_per_number"),
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="wallet_slot_credits_only"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} slot {self.slot}"


class WalletMovement(models.Model):
    """One change of a wallet's balance. A credit may be held: ``amount - reserve_amount`` is *pending*
    until ``hold_until`` and ``reserve_amount`` is *reserved* until ``reserve_until`` (never earlier);
    the rest of the balance is *available* to pay out (``wallet.selectors``)."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="movements")
    amount = models.BigIntegerField(help_text="Minor units; credit positive, debit negative.")
    idempotency_key = models.CharField(max_length=200, unique=True)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    hold_until = models.DateTimeField(null=True, blank=True,
                                      help_text="A held credit: pending (less its reserve) until then.")
    reserve_amount = models.BigIntegerField(db_default=0, help_text="Minor units of a held credit reserved until "
                                                                    "reserve_until.")
    reserve_until = models.DateTimeField(null=True, blank=True,
                                         help_text="When the whole credit is available (not before hold_until).")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="wallet_movement_nonzero"),
            # Only credits are held, both times set together, the reserve within the credit and released last.
            models.CheckConstraint(
                condition=(models.Q(hold_until__isnull=True, reserve_until__isnull=True, reserve_amount=0)
                           | (models.Q(amount__gt=0, hold_until__isnull=False, reserve_amount__gte=0,
                                       reserve_amount__lte=models.F("amount"))
                              & models.Q(reserve_until__gte=models.F("hold_until")))),
                name="wallet_movement_hold_consistent"),
        ]
        indexes = [models.Index(fields=["wallet", "reserve_until"], name="wallet_movement_held",
                                condition=models.Q(reserve_until__isnull=False))]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.wallet} {'+' if self.amount > 0 else ''}{format_money(self.amount, self.wallet.currency)}"
