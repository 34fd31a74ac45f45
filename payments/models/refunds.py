"""Refunds, their audit rows, and the suspected double charges an operator refunds."""
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.ids import IdFactory
from core.models import TransitionAudit
from payments.models.orders import PaymentOrder


class SuspectedDoubleCharge(models.Model):
    """A success the PSP reports for a PaymentIntent other than the one that decided the order:
    money the buyer paid that our books don't hold. Nothing is posted; an operator refunds it
    (one click, audited) or dismisses it with a reason."""

    class Kind(models.TextChoices):
        DOUBLE_CHARGE = "double_charge", "second charge for a succeeded order"
        CAPTURED_FOR_FAILED_ORDER = "captured_for_failed_order", "charge for an order we recorded as failed"

    class State(models.TextChoices):
        OPEN = "open"
        REFUNDED = "refunded"
        DISMISSED = "dismissed"

    payment_order = models.ForeignKey(PaymentOrder, on_delete=models.PROTECT, related_name="suspected_double_charges")
    psp_reference = models.CharField(max_length=100, unique=True, help_text="The extra PaymentIntent.")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Minor units, as the PSP reported them.")
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    detected_by = models.CharField(max_length=100, help_text="Who reported it: a webhook, the janitor, a task.")
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.CharField(max_length=100, blank=True)
    resolved_reason = models.CharField(max_length=500, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    refund_psp_reference = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        permissions = [("refund_suspecteddoublecharge", "Can refund a suspected double charge")]

    def __str__(self) -> str:
        return f"{self.psp_reference} for {self.payment_order_id}"


class RefundState(models.TextChoices):
    PENDING = "pending", "pending (sent or about to be sent to the PSP)"
    DEAD_LETTER = "dead_letter", "dead letter (attempts used up or a contradicting answer; an operator decides)"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(ConcurrentTransitionMixin, models.Model):
    """Money returned to the buyer for (part of) a succeeded payment order."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("rf"), editable=False)
    payment_order = models.ForeignKey(PaymentOrder, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200, blank=True)
    TRANSITION_FIELDS = ("state", "psp_reference", "failure_code", "attempts", "psp_key_generation",
                         "next_action_at", "updated_at", "completed_at", "reversed_at")  # core.transitions

    state = FSMField(default=RefundState.PENDING, choices=RefundState.choices, protected=True, db_index=True)
    psp_reference = models.CharField(max_length=100, blank=True, db_index=True)
    failure_code = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    psp_key_generation = models.PositiveSmallIntegerField(
        default=0, help_text="Bumped when the PSP saved a failure against the current key and lists no refund for it.")
    next_action_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    reversed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the PSP said the refund failed after it had succeeded (the buyer's bank sent the money back): "
                  "its postings were reversed then.")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")]
        permissions = [("replay_refund", "Can send a dead-lettered refund back to the PSP")]

    def __str__(self) -> str:
        return self.id

    @property
    def psp_idempotency_key(self) -> str:
        return self.id if not self.psp_key_generation else f"{self.id}.r{self.psp_key_generation}"

    @transition(field=state, source=RefundState.PENDING, target=RefundState.SUCCEEDED)
    def succeed(self, psp_reference: str) -> None:
        self.psp_reference = psp_reference or self.psp_reference
        self.completed_at = timezone.now()

    @transition(field=state, source=RefundState.PENDING, target=RefundState.FAILED)
    def fail(self, code: str) -> None:
        self.failure_code = code[:100]
        self.completed_at = timezone.now()

    @transition(field=state, source=RefundState.SUCCEEDED, target=RefundState.FAILED)
    def fail_after_success(self, code: str) -> None:
        """The buyer's bank sent a paid refund back (Stripe's ``refund.failed`` after ``refund.succeeded``): the
        PSP holds the money again. ``completed_at`` stays the success's; the reversal's time is ``reversed_at``."""
        self.failure_code = code[:100]
        self.reversed_at = timezone.now()

    @transition(field=state, source=RefundState.PENDING, target=RefundState.DEAD_LETTER)
    def dead_letter(self, code: str) -> None:
        """The amount stays reserved on the order: the PSP may have refunded it."""
        self.failure_code = code[:100]

    @transition(field=state, source=RefundState.DEAD_LETTER, target=RefundState.PENDING)
    def redrive(self) -> None:
        """An operator sends it back, after the PSP was asked."""
        self.failure_code = ""


class RefundTransition(TransitionAudit):
    """Audit row: every state change of a refund, who made it and why."""

    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="transitions")

    class Meta(TransitionAudit.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.refund_id}: {self.from_state} → {self.to_state}"
