"""What payments exchanges with the rest: the PSP's webhooks in (an inbox), merchants' events out (an
outbox) and reconciliation's read-only view of an order."""
from django.db import models

from core.models import WebhookInbox


class WebhookEvent(WebhookInbox):
    """Inbox of PSP webhooks: stored (deduplicated by event id) before they are processed."""

    class Meta(WebhookInbox.Meta):
        permissions = [("reprocess_webhookevent", "Can re-run processing of a PSP webhook event")]


class SettleableOrder(models.Model):
    """A payment order as reconciliation reads it: a row of the read-only view ``payments_settleable_order``
    (migration 0004), whose columns are payments' contract with reconciliation. No table of its own."""

    id = models.CharField(primary_key=True, max_length=40)
    seller_id = models.CharField(max_length=40)
    psp_reference = models.CharField(max_length=100, blank=True, db_collation="C")  # the view's, as its table's (0019)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=32, help_text="A PaymentOrderState value.")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "payments_settleable_order"

    def __str__(self) -> str:
        return f"{self.id} {self.state}"


class MerchantEvent(models.Model):
    """Payments' outbox: an event a merchant's webhooks may want, written in the statement of the change
    it tells of and taken once by the relay (``payments.services.merchant_events``), which deletes it."""

    id = models.BigAutoField(primary_key=True)
    client_id = models.CharField(max_length=40)
    type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=40, help_text="The order, payment event or refund it is about.")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.type} {self.object_id}"
