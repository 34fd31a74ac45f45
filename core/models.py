from django.db import models
from django_fsm import ConcurrentTransitionMixin as _FsmConcurrentTransitionMixin
from django_fsm import FSMFieldMixin

from core.ids import IdFactory

#: Each stateful model's state fields, found once per class (``_meta.fields`` is fixed once the apps are ready).
_STATE_FIELDS: dict[type, tuple[FSMFieldMixin, ...]] = {}


class ConcurrentTransitionMixin(_FsmConcurrentTransitionMixin):
    """django-fsm's mixin, with the model's state fields found once per class: the original filters every
    field of the model through ``isinstance`` on every instance made (each row the executor reads, about 4%
    of the worker's CPU per order). What it does with them (the initial states kept, the ``save`` guarded by
    them) is unchanged."""

    @property
    def state_fields(self) -> tuple[FSMFieldMixin, ...]:
        cls = type(self)
        fields = _STATE_FIELDS.get(cls)
        if fields is None:
            fields = _STATE_FIELDS[cls] = tuple(f for f in self._meta.fields if isinstance(f, FSMFieldMixin))
        return fields


class ApiClient(models.Model):
    """A storefront that calls our API. Only a SHA-256 of its key is stored."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("cli"), editable=False)
    name = models.CharField(max_length=200)
    key_prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    # DRF's IsAuthenticated asks the authenticated principal this.
    @property
    def is_authenticated(self) -> bool:
        return True


class IdempotencyRecord(models.Model):
    """The first response to an ``Idempotency-Key``, per API client (Stripe's semantics)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    # Looked up through idempotency_key_unique_per_client (client, key), which leads with it.
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    request_method = models.CharField(max_length=8)
    request_path = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    locked_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique_per_client")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class TransitionAudit(models.Model):
    """An audit row: one state change of a stateful object, who made it and why.

    Concrete audit models add the foreign key to their object, with ``related_name="transitions"``
    (``core.transitions.transition_apply`` writes them)."""

    from_state = models.CharField(max_length=32)
    to_state = models.CharField(max_length=32)
    actor = models.CharField(max_length=100, help_text="e.g. task:payment_order_execute, webhook:evt_…, "
                                                       "operator:alice")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]



class WebhookInbox(models.Model):
    """An inbox of a PSP's webhooks: each event stored once (by its id, ``deliveries`` counting how often the PSP
    sent it) before it is processed, and how its processing went. Concrete inboxes: payments' ``WebhookEvent``
    and payouts' ``PayoutWebhookEvent``."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=100, help_text="The PSP's event id.")
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    object_id = models.CharField(max_length=100, blank=True, db_index=True, help_text="The PSP object it is about.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    deliveries = models.PositiveIntegerField(default=1, help_text="How many times the PSP sent it.")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"
