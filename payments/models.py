"""Sellers, payment events (one checkout) and payment orders (one per seller)."""
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.ids import IdFactory
from core.models import ApiClient


class Seller(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("sel"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="sellers")
    name = models.CharField(max_length=200)
    external_reference = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "external_reference"],
                condition=~models.Q(external_reference=""),
                name="seller_external_reference_unique_per_client",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class PaymentEvent(models.Model):
    """One buyer's checkout. Holds no card data: only the PSP's payment-method token."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("pe"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="payment_events")
    buyer_reference = models.CharField(max_length=100)
    buyer_email = models.EmailField(blank=True)
    payment_method = models.CharField(max_length=100, help_text="The PSP's payment-method token.")
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.id


class PaymentOrderState(models.TextChoices):
    NOT_STARTED = "not_started"
    EXECUTING = "executing"
    PENDING = "pending", "pending (PSP outcome not final)"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL_STATES = (PaymentOrderState.SUCCEEDED, PaymentOrderState.FAILED)


class PaymentOrder(ConcurrentTransitionMixin, models.Model):
    """One seller's part of a checkout, executed against the PSP.

    Transition methods only change fields; ``payments.services`` locks the row, checks,
    transitions, saves, writes the audit row and moves money in one transaction.
    """

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("ord"), editable=False)
    payment_event = models.ForeignKey(PaymentEvent, on_delete=models.PROTECT, related_name="orders")
    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="payment_orders")
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    state = FSMField(default=PaymentOrderState.NOT_STARTED, choices=PaymentOrderState.choices,
                     protected=True, db_index=True)
    psp_reference = models.CharField(max_length=100, blank=True, db_index=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_order_amount_positive"),
            models.UniqueConstraint(fields=["payment_event", "seller"], name="payment_order_one_per_seller"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def psp_idempotency_key(self) -> str:
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @transition(field=state, source=PaymentOrderState.NOT_STARTED, target=PaymentOrderState.EXECUTING)
    def start(self) -> None:
        self.attempts += 1

    @transition(field=state, source=[PaymentOrderState.EXECUTING, PaymentOrderState.PENDING],
                target=PaymentOrderState.PENDING)
    def await_psp(self, psp_reference: str) -> None:
        self.psp_reference = psp_reference or self.psp_reference

    @transition(field=state, source=[PaymentOrderState.EXECUTING, PaymentOrderState.PENDING],
                target=PaymentOrderState.SUCCEEDED)
    def succeed(self, psp_reference: str) -> None:
        self.psp_reference = psp_reference or self.psp_reference
        self.failure_code = ""
        self.failure_message = ""

    @transition(field=state, source=[PaymentOrderState.EXECUTING, PaymentOrderState.PENDING],
                target=PaymentOrderState.FAILED)
    def fail(self, code: str, message: str, psp_reference: str = "") -> None:
        self.psp_reference = psp_reference or self.psp_reference
        self.failure_code = code[:100]
        self.failure_message = message[:500]


class PaymentOrderTransition(models.Model):
    """Audit row: every state change of a payment order, who made it and why."""

    payment_order = models.ForeignKey(PaymentOrder, on_delete=models.PROTECT, related_name="transitions")
    from_state = models.CharField(max_length=32)
    to_state = models.CharField(max_length=32)
    actor = models.CharField(max_length=100, help_text="e.g. task:payment_order_execute, webhook:evt_…, operator:alice")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.payment_order_id}: {self.from_state} → {self.to_state}"
