"""Money out: sellers' payout accounts at the PSP, payouts and their audit rows.

No bank account number is ever stored: the PSP keeps it; we keep its ids and the last four digits
(a ``varchar(4)``, so nothing longer fits).
"""
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.ids import IdFactory
from core.models import TransitionAudit, WebhookInbox
from wallet.models import Wallet, WalletQuerySet


class PayoutAccount(models.Model):
    """A seller's payout destination: a connected account at the PSP and its bank account."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("pa"), editable=False)
    seller = models.OneToOneField("payments.Seller", on_delete=models.PROTECT, related_name="payout_account")
    psp_account_id = models.CharField(max_length=100, unique=True, help_text="The connected account (acct_...).")
    psp_bank_account_id = models.CharField(max_length=100, help_text="Its bank account (ba_...), paid out to.")
    bank_last4 = models.CharField(max_length=4, help_text="The last four digits: all we know of the number.")
    bank_name = models.CharField(max_length=100, blank=True)
    bank_country = models.CharField(max_length=2)
    currency = models.CharField(max_length=3, help_text="The bank account's currency: payouts are made in it only.")
    unusable_at = models.DateTimeField(
        null=True, blank=True, help_text="When a payout to this bank account failed for good (closed, no such "
                                         "account...): no payout is made to it until the seller gives another.")
    unusable_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(bank_last4__regex=r"^[0-9A-Za-z]{2,4}$"),
                                   name="payout_account_last4_only"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[a-z]{3}$"),
                                   name="payout_account_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.seller_id} → {self.bank_name or 'bank'} ••{self.bank_last4} ({self.currency})"


class PayoutAccountChange(models.Model):
    """Audit row: a payout account opened or its bank account replaced, by whom and why."""

    account = models.ForeignKey(PayoutAccount, on_delete=models.PROTECT, related_name="changes")
    from_bank_account = models.CharField(max_length=100, blank=True)
    to_bank_account = models.CharField(max_length=100)
    to_last4 = models.CharField(max_length=4)
    actor = models.CharField(max_length=100)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.from_bank_account or '-'} → {self.to_bank_account}"


class PayoutState(models.TextChoices):
    PENDING = "pending", "pending (created: the transfer and payout are being sent to the PSP)"
    IN_TRANSIT = "in_transit", "in transit (the PSP accepted it: on its way to the bank)"
    PAID = "paid"
    FAILED = "failed", "failed (its money is back in the seller's balance)"
    DEAD_LETTER = "dead_letter", "dead letter (attempts used up or a contradicting answer; an operator decides)"


class Payout(ConcurrentTransitionMixin, models.Model):
    """One seller's available balance in one currency, paid to their bank through the PSP: a transfer to
    their connected account, then a payout from it. Created with its money taken out of the seller's
    payable (into payouts in transit) in one transaction; paid books it out of our PSP balance; failed
    puts it back. Transition methods change fields only: ``payouts.services`` locks, transitions, writes
    the audit row and posts the money in one transaction."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("pyt"), editable=False)
    seller = models.ForeignKey("payments.Seller", on_delete=models.PROTECT, related_name="payouts")
    account = models.ForeignKey(PayoutAccount, on_delete=models.PROTECT, related_name="payouts")
    psp_account_id = models.CharField(max_length=100, help_text="The connected account it was sent from.")
    psp_bank_account_id = models.CharField(max_length=100, help_text="The bank account it was sent to.")
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    payout_date = models.DateField(help_text="The run it belongs to: one payout per seller, currency and date.")
    TRANSITION_FIELDS = ("state", "psp_transfer_id", "psp_payout_id", "failure_code", "failure_message",
                         "arrival_date", "attempts", "next_action_at", "psp_key_generation", "psp_key_spent_at",
                         "completed_at", "returned_at", "updated_at")  # core.transitions

    state = FSMField(default=PayoutState.PENDING, choices=PayoutState.choices, protected=True, db_index=True)
    psp_transfer_id = models.CharField(max_length=100, blank=True, db_index=True)
    psp_payout_id = models.CharField(max_length=100, blank=True, db_index=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    arrival_date = models.DateField(null=True, blank=True, help_text="When the PSP expects it at the bank.")
    attempts = models.PositiveIntegerField(default=0, help_text="Rounds of PSP calls made for it.")
    psp_key_generation = models.PositiveSmallIntegerField(
        default=0, help_text="Bumped when the PSP saved a failure against the keys and shows nothing made by them.")
    psp_key_spent_at = models.DateTimeField(null=True, blank=True)
    next_action_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                          help_text="When the recovery round may act on it if nothing else has.")
    transfer_reversed_at = models.DateTimeField(
        null=True, blank=True, help_text="A failed payout: when its transfer was taken back from the connected "
                                         "account to our PSP balance.")
    returned_at = models.DateTimeField(
        null=True, blank=True, help_text="A paid payout the bank sent back (the PSP then reported it failed): when "
                                         "we learned it. Its money went back to the seller's balance.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("replay_payout", "Can send a dead-lettered payout back to the PSP"),
                       ("run_payouts", "Can run payouts for sellers now")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payout_amount_positive"),
            models.UniqueConstraint(fields=["seller", "currency", "payout_date"], name="payout_one_per_seller_day"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def psp_key_base(self) -> str:
        """The payout id, then ``<id>.r<n>`` after the n-th time the PSP spent the keys (saved a 500)."""
        return self.id if not self.psp_key_generation else f"{self.id}.r{self.psp_key_generation}"

    @transition(field=state, source=[PayoutState.PENDING, PayoutState.DEAD_LETTER], target=PayoutState.IN_TRANSIT)
    def send(self, psp_payout_id: str, arrival_date) -> None:
        self.psp_payout_id = psp_payout_id or self.psp_payout_id
        self.arrival_date = arrival_date or self.arrival_date

    @transition(field=state, source=[PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER],
                target=PayoutState.PAID)
    def pay(self, psp_payout_id: str, arrival_date) -> None:
        self.psp_payout_id = psp_payout_id or self.psp_payout_id
        self.arrival_date = arrival_date or self.arrival_date
        self.failure_code = self.failure_message = ""
        self.completed_at = timezone.now()

    @transition(field=state, source=[PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER],
                target=PayoutState.FAILED)
    def fail(self, code: str, message: str, psp_payout_id: str = "") -> None:
        self.psp_payout_id = psp_payout_id or self.psp_payout_id
        self.failure_code = code[:100]
        self.failure_message = message[:500]
        self.completed_at = timezone.now()

    @transition(field=state, source=PayoutState.PAID, target=PayoutState.FAILED)
    def bank_return(self, code: str, message: str) -> None:
        """The bank sent a paid payout back, days later (Stripe reports the paid payout ``failed``)."""
        self.failure_code = code[:100]
        self.failure_message = message[:500]
        self.returned_at = timezone.now()

    @transition(field=state, source=[PayoutState.PENDING, PayoutState.IN_TRANSIT], target=PayoutState.DEAD_LETTER)
    def dead_letter(self, code: str, message: str) -> None:
        """Its money stays in transit: the PSP may have paid it."""
        self.failure_code = code[:100]
        self.failure_message = message[:500]

    @transition(field=state, source=PayoutState.DEAD_LETTER, target=PayoutState.PENDING)
    def redrive(self) -> None:
        """An operator sends it back, after the PSP was asked."""
        self.failure_code = self.failure_message = ""


class PayoutTransition(TransitionAudit):
    """Audit row: every state change of a payout, who made it and why."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="transitions")

    class Meta(TransitionAudit.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.payout_id}: {self.from_state} → {self.to_state}"


class PayoutRun(models.Model):
    """One run of the payout job (beat, ``payouts_run``, the admin): what it did per seller and currency."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("prun"), editable=False)
    payout_date = models.DateField(db_index=True)
    actor = models.CharField(max_length=100)
    reason = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    payouts_created = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.payout_date})"


class PayoutRunItem(models.Model):
    """The run's report line for one seller and currency: the payout it made, or why it made none."""

    class Outcome(models.TextChoices):
        CREATED = "created"
        ALREADY_PAID_OUT = "already_paid_out", "a payout for this date exists"
        NO_PAYOUT_ACCOUNT = "no_payout_account", "no payout account"
        CURRENCY_NOT_SUPPORTED = "currency_not_supported", "the payout account's bank takes another currency"
        BELOW_MINIMUM = "below_minimum", "available balance below PAYOUT_MINIMUM"
        NOTHING_AVAILABLE = "nothing_available", "nothing available (all held)"
        NEGATIVE_BALANCE = "negative_balance", "the seller owes: netted off the money that becomes available next"
        SELLER_SUSPENDED = "seller_suspended"
        PAYOUT_ACCOUNT_UNUSABLE = "payout_account_unusable", "the bank account refused a payout: the seller must " \
                                                             "give another (money stays available)"

    run = models.ForeignKey(PayoutRun, on_delete=models.CASCADE, related_name="items")
    seller_id = models.CharField(max_length=40, db_index=True)
    currency = models.CharField(max_length=3)
    available_amount = models.BigIntegerField(help_text="Minor units available when the run looked.")
    outcome = models.CharField(max_length=32, choices=Outcome.choices, db_index=True)
    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.seller_id} {self.currency}: {self.outcome}"


class PayoutWebhookEvent(WebhookInbox):
    """Inbox of the PSP's Connect webhooks (payout.*), stored (deduplicated by event id) before processing."""

    psp_account_id = models.CharField(max_length=100, blank=True)


class NegativeBalanceWriteOff(models.Model):
    """The platform took a seller's negative balance in one currency as its loss: ``Dr expenses:seller_losses /
    Cr`` the seller's payable back to zero, and the wallet credited, in one transaction, once per negative
    episode (``idempotency_key``, also the posting's and the movement's key). Who and why: the audit row."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("wo"), editable=False)
    seller = models.ForeignKey("payments.Seller", on_delete=models.PROTECT, related_name="write_offs")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Minor units: what the seller owed, now the platform's loss.")
    negative_since = models.DateTimeField(help_text="Since when the balance had been below zero.")
    episode_movement_id = models.BigIntegerField(help_text="The wallet movement that took it below zero.")
    idempotency_key = models.CharField(max_length=200, unique=True)
    actor = models.CharField(max_length=100)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("write_off_negative_balance", "Can write off a seller's negative balance")]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="write_off_amount_positive")]

    def __str__(self) -> str:
        return f"{self.id} {self.seller_id} {self.currency}"


class NegativeBalanceManager(models.Manager.from_queryset(WalletQuerySet)):
    def get_queryset(self):
        return super().get_queryset().with_total().filter(total__lt=0)


class NegativeBalance(Wallet):
    """A seller's wallet below zero, as the operators' console lists it (a view of ``wallet``'s table: no
    table of its own)."""

    objects = NegativeBalanceManager()

    class Meta:
        proxy = True
        ordering = ["negative_since", "id"]
