"""Outbound webhooks: a merchant's endpoints, the events we owe them (the outbox), and each delivery
to each endpoint with a log row per attempt. Knows nothing of payments: its producers hand it the
event's type and data."""
from django.db import models

from core.ids import IdFactory
from core.models import ApiClient


class WebhookEndpoint(models.Model):
    """Where a merchant wants to be told, and which events. The secret signs every delivery."""

    class Status(models.TextChoices):
        ENABLED = "enabled"
        FAILING = "failing", "failing (its last deliveries failed; still tried)"
        DISABLED = "disabled"

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("we"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)
    enabled_events = models.JSONField(help_text='Event types, or ["*"] for every type.')
    secret = models.CharField(max_length=100, editable=False,
                              help_text="whsec_…: shown once, at creation; signs every delivery (HMAC-SHA256).")
    description = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENABLED, db_index=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


class OutboundEvent(models.Model):
    """The outbox: one event we owe a merchant, written in the transaction of the change it tells of."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("evt"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=100, db_index=True)
    data = models.JSONField(help_text="The object as it was when the event happened.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class Delivery(models.Model):
    """One event to one endpoint: tried with exponential backoff until it answers 2xx or the attempts
    run out (``failed``: an operator may redeliver it)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "failed (attempts used up; redeliver from the admin)"

    event = models.ForeignKey(OutboundEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                           help_text="When it is tried next (the sweeper's due time too).")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_endpoint")]
        permissions = [("redeliver_delivery", "Can send an outbound webhook again")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """The log: one row per HTTP attempt, what was sent and what came back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="attempt_log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=100, help_text="task:deliver, or operator:<name> for a redelivery.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="A timeout, a refused connection…")
    response_body = models.CharField(max_length=1000, blank=True, help_text="The first 1000 characters.")
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.attempted_at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"


class Redelivery(models.Model):
    """Audit row: an operator sent a delivery again, and why."""

    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="redeliveries")
    operator = models.CharField(max_length=150)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} by {self.operator}"
