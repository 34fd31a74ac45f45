"""Disputes and chargebacks: a buyer's bank taking a charge back, as the PSP reports it (a webhook or a
settlement line), its money withdrawn from the seller when it opens and given back when it is won."""
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition

from core.ids import IdFactory
from core.models import ConcurrentTransitionMixin, TransitionAudit


class DisputeState(models.TextChoices):
    NEEDS_RESPONSE = "needs_response", "needs response (evidence due)"
    UNDER_REVIEW = "under_review", "under review (evidence submitted; the bank decides)"
    WON = "won", "won (its money is back)"
    LOST = "lost", "lost (the buyer keeps the money)"


#: How far along a state is: a report never moves a dispute back (webhooks come out of order).
STATE_RANK = {DisputeState.NEEDS_RESPONSE: 0, DisputeState.UNDER_REVIEW: 1, DisputeState.WON: 2,
              DisputeState.LOST: 2}
CLOSED_STATES = (DisputeState.WON, DisputeState.LOST)


class DisputeProblem(models.TextChoices):
    """Why a dispute's money was not booked: kept for an operator, nothing moved."""

    NONE = "", "none"
    UNKNOWN_CHARGE = "unknown_charge", "no payment order of ours has this charge"
    NOT_CAPTURED = "not_captured", "the order is not captured in our books"
    CURRENCY_MISMATCH = "currency_mismatch", "in another currency than the order"
    EXCEEDS_CAPTURED = "exceeds_captured", "more than was captured (less refunds and other disputes)"


class DisputeSource(models.TextChoices):
    WEBHOOK = "webhook"
    SETTLEMENT = "settlement", "settlement line"


class FeePayer(models.TextChoices):
    SELLER = "seller"
    PLATFORM = "platform"


class Dispute(ConcurrentTransitionMixin, models.Model):
    """One dispute (Stripe's ``dp_...``, Adyen's chargeback reference), whichever source reported it first.

    Its money is booked once, when it is first reported and nothing is wrong with it (``problem`` empty):
    the disputed amount and the PSP's dispute fee taken from our PSP balance and from the seller (the fee
    from the platform when ``fee_payer`` is ``platform``), posted under ``dispute:<id>:withdrawn``; a won
    dispute gives them back under ``dispute:<id>:reinstated``. ``disputes.services`` locks, transitions,
    writes the audit row and posts in one transaction."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("dsp"), editable=False)
    psp_dispute_id = models.CharField(max_length=100, unique=True, help_text="The PSP's dispute id (dp_...).")
    psp_charge_id = models.CharField(max_length=100, blank=True, help_text="The charge disputed (ch_...).")
    psp_payment_reference = models.CharField(max_length=100, blank=True, db_index=True,
                                             help_text="The payment (PaymentIntent pi_...) the dispute names.")
    payment_order = models.ForeignKey("payments.PaymentOrder", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="disputes")
    seller = models.ForeignKey("payments.Seller", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="disputes")
    amount = models.BigIntegerField(help_text="Disputed amount, minor units (the PSP's figure).")
    currency = models.CharField(max_length=3)
    fee = models.BigIntegerField(default=0, help_text="The PSP's dispute fee, minor units of fee_currency.")
    fee_currency = models.CharField(max_length=3, blank=True)
    fee_payer = models.CharField(max_length=16, choices=FeePayer.choices,
                                 help_text="Who bore the fee when it was booked (DISPUTE_FEE_PAYER then).")
    reason = models.CharField(max_length=100, blank=True, help_text="The bank's reason (fraudulent, ...).")
    psp_status = models.CharField(max_length=40, blank=True, help_text="The PSP's status, as last reported.")
    due_by = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Evidence is due by then.")
    source = models.CharField(max_length=16, choices=DisputeSource.choices, help_text="Who reported it first.")
    problem = models.CharField(max_length=32, choices=DisputeProblem.choices, blank=True, db_index=True)
    problem_detail = models.CharField(max_length=500, blank=True)
    TRANSITION_FIELDS = ("state", "psp_status", "closed_at", "updated_at")  # core.transitions

    state = FSMField(default=DisputeState.NEEDS_RESPONSE, choices=DisputeState.choices, protected=True,
                     db_index=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True, help_text="When its money was taken (booked).")
    reinstated_at = models.DateTimeField(null=True, blank=True, help_text="When a won dispute's money came back.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_by", "id"]
        permissions = [("book_dispute", "Can book a dispute kept with a problem, after a second look")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="dispute_amount_positive"),
            models.CheckConstraint(condition=models.Q(fee__gte=0), name="dispute_fee_not_negative"),
            models.CheckConstraint(condition=models.Q(problem="") | models.Q(withdrawn_at__isnull=True),
                                   name="dispute_with_problem_books_nothing"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def booked(self) -> bool:
        return self.withdrawn_at is not None

    @property
    def overdue(self) -> bool:
        """Evidence not submitted by its due date."""
        return self.state == DisputeState.NEEDS_RESPONSE and self.due_by is not None and self.due_by < timezone.now()

    @transition(field=state, source=DisputeState.NEEDS_RESPONSE, target=DisputeState.UNDER_REVIEW)
    def submit(self, psp_status: str) -> None:
        self.psp_status = psp_status or self.psp_status

    @transition(field=state, source=[DisputeState.NEEDS_RESPONSE, DisputeState.UNDER_REVIEW], target=DisputeState.WON)
    def win(self, psp_status: str) -> None:
        self.psp_status = psp_status or self.psp_status
        self.closed_at = timezone.now()

    @transition(field=state, source=[DisputeState.NEEDS_RESPONSE, DisputeState.UNDER_REVIEW],
                target=DisputeState.LOST)
    def lose(self, psp_status: str) -> None:
        self.psp_status = psp_status or self.psp_status
        self.closed_at = timezone.now()


class DisputeTransition(TransitionAudit):
    """Audit row: every state change of a dispute, who made it and why."""

    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="transitions")

    class Meta(TransitionAudit.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.dispute_id}: {self.from_state or '-'} → {self.to_state}"


class DisputeNote(models.Model):
    """An operator's evidence note on a dispute (what was sent to the bank, what is missing). Never edited:
    each note is its own row, with who wrote it and when."""

    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="notes")
    author = models.CharField(max_length=100)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.dispute_id} note by {self.author}"
