"""Outbound webhooks: the events we owe merchants, endpoints, signed deliveries with backoff, redelivery.

A producer (payments' relay of its own outbox, ``payments.services.merchant_events``) calls
``outbound_event_record`` with the event's type and the object as it now is: the event and one
delivery per subscribed endpoint are written in one statement of the producer's transaction, so
the event exists if and only if that transaction committed. The delivery tasks are enqueued on
commit; should one be lost, the sweeper finds its delivery due. Deliveries are at least once (a
merchant dedupes by the event's ``id``), signed as Stripe signs (``t=<unix time>,v1=<HMAC-SHA256
of "t.body">``), and never block a payment: they run in their own tasks, outside any payment's
transaction.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.db import db_connection_release
from core.exceptions import InvalidRequest
from core.ids import new_id
from core.models import ApiClient
from notifications.destinations import destination_refusal_at_delivery, destination_refusal_at_registration
from notifications.models import Delivery, DeliveryAttempt, OutboundEvent, Redelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Marketplace-Signature"
EVENT_TYPES = ("checkout.completed", "payment_order.succeeded", "payment_order.failed", "refund.succeeded")


class SignatureError(Exception):
    """A delivery whose signature or timestamp does not hold."""


class EventTypeUnknown(InvalidRequest):
    code = "event_type_unknown"


class DestinationRefused(InvalidRequest):
    """An endpoint URL into our own network (loopback, private, link-local...): see ``destinations``."""

    code = "url_not_allowed"


# --- Signing (ours to send; ``signature_verify`` is what a merchant runs) -------------------------
def signature_header(*, secret: str, payload: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signature_verify(*, secret: str, payload: bytes, header: str, tolerance: int = 300) -> None:
    """Stripe's scheme: refuse a missing, stale, future-dated or wrong signature."""
    items = [part.split("=", 1) for part in (header or "").split(",") if "=" in part]
    stamps = [v for k, v in items if k.strip() == "t"]
    signatures = [v for k, v in items if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        raise SignatureError("malformed signature header")
    timestamp = int(stamps[0])
    if abs(time.time() - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    expected = signature_header(secret=secret, payload=payload, timestamp=timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("no signature matches")


# --- The outbox -------------------------------------------------------------------------------------
_RECORD_SQL = f"""
WITH endpoints AS (
    SELECT id FROM "{WebhookEndpoint._meta.db_table}"
    WHERE client_id = %(client)s AND status <> %(disabled)s AND (enabled_events ? %(type)s OR enabled_events ? '*')
), event AS (
    INSERT INTO "{OutboundEvent._meta.db_table}" (id, client_id, type, data, created_at)
    SELECT %(id)s, %(client)s, %(type)s, %(data)s, %(now)s WHERE EXISTS (SELECT 1 FROM endpoints) RETURNING id
), queued AS (
    INSERT INTO "{Delivery._meta.db_table}" (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
    SELECT event.id, endpoints.id, %(pending)s, 0, %(now)s, %(now)s FROM event, endpoints
    RETURNING id
)
SELECT count(*) FROM queued
"""


def outbound_event_record(*, client_id: str, type: str, data: dict) -> str | None:
    """The event we owe ``client_id``'s endpoints subscribed to ``type``, with one delivery per endpoint,
    in one statement of the caller's transaction; nothing is stored when no endpoint wants it. The
    deliveries are sent on commit. Returns the event's id, or ``None``."""
    event_id = new_id("evt")
    with connection.cursor() as cur:
        cur.execute(_RECORD_SQL, {"id": event_id, "client": client_id, "type": type, "data": json.dumps(data),
                                  "now": timezone.now(), "pending": Delivery.Status.PENDING,
                                  "disabled": WebhookEndpoint.Status.DISABLED})
        queued = cur.fetchone()[0]
    if not queued:
        return None
    transaction.on_commit(lambda: _enqueue_event(event_id), robust=True)
    return event_id


def _enqueue_event(event_id: str) -> None:
    from notifications.tasks import delivery_attempt_task

    for delivery_id in Delivery.objects.filter(event_id=event_id).values_list("id", flat=True):
        delivery_attempt_task.delay(delivery_id=delivery_id)


# --- Endpoints ----------------------------------------------------------------------------------------
def webhook_endpoint_create(*, client: ApiClient, url: str, enabled_events: list[str],
                            description: str = "") -> WebhookEndpoint:
    """A merchant's endpoint with a new secret (returned on the object this once; stored to sign)."""
    refusal = destination_refusal_at_registration(url)
    if refusal:
        raise DestinationRefused(f"Webhooks are not sent into our own network: {refusal}.", param="url")
    unknown = [t for t in enabled_events if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise EventTypeUnknown(f"Unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)} or '*'.",
                               param="enabled_events")
    endpoint = WebhookEndpoint.objects.create(client=client, url=url, enabled_events=sorted(set(enabled_events)),
                                              description=description,
                                              secret=f"whsec_{secrets.token_urlsafe(32)}")
    return endpoint


# --- Delivery -------------------------------------------------------------------------------------------
def delivery_delay(attempts: int) -> float:
    """Exponential backoff with jitter after ``attempts`` failed attempts, capped (days of retries in all)."""
    ceiling = min(settings.NOTIFICATIONS_RETRY_MAX_SECONDS,
                  settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def event_payload(event: OutboundEvent) -> bytes:
    return json.dumps({"id": event.id, "object": "event", "type": event.type,
                       "created": int(event.created_at.timestamp()), "data": {"object": event.data}},
                      separators=(",", ":"), sort_keys=True).encode()


def _claim(delivery_id: int) -> Delivery | None:
    """Take a due delivery for one attempt: its next time is pushed past the attempt's own timeout,
    so a duplicate task or the sweeper does not send it at the same moment."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.NOTIFICATIONS_TIMEOUT_SECONDS + 30)
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING,
                                      next_attempt_at__lte=now).update(next_attempt_at=lease)
    if not claimed:
        return None
    return Delivery.objects.select_related("event", "endpoint").get(pk=delivery_id)


def delivery_attempt(*, delivery_id: int, actor: str = "task:delivery_attempt") -> float | None:
    """Send one due delivery once and log the attempt. Returns the delay before the next attempt,
    or ``None`` when there is none to make (delivered, failed for good, not due, or taken)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    endpoint, payload = delivery.endpoint, event_payload(delivery.event)
    headers = {"Content-Type": "application/json", "User-Agent": "marketplace-webhooks/1",
               SIGNATURE_HEADER: signature_header(secret=endpoint.secret, payload=payload, timestamp=int(time.time()))}
    db_connection_release()
    started = time.monotonic()
    status_code, error, body = None, "", ""
    refusal = destination_refusal_at_delivery(endpoint.url)  # again now: DNS may have changed
    if refusal:
        error = f"not sent: {refusal}"[:500]
    else:
        try:
            response = requests.post(endpoint.url, data=payload, headers=headers, allow_redirects=False,
                                     timeout=settings.NOTIFICATIONS_TIMEOUT_SECONDS)
            status_code, body = response.status_code, response.text[:1000]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    ok = status_code is not None and 200 <= status_code < 300
    return _record_attempt(delivery, actor=actor, ok=ok, status_code=status_code, error=error, body=body,
                           duration_ms=int((time.monotonic() - started) * 1000))


@transaction.atomic
def _record_attempt(delivery: Delivery, *, actor: str, ok: bool, status_code: int | None, error: str, body: str,
                    duration_ms: int) -> float | None:
    DeliveryAttempt.objects.create(delivery=delivery, actor=actor[:100], status_code=status_code, error=error,
                                   response_body=body, duration_ms=duration_ms, succeeded=ok)
    attempts = delivery.attempts + 1
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if ok:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED, attempts=attempts,
                                                       last_status_code=status_code, delivered_at=now,
                                                       next_attempt_at=None)
        if endpoint.consecutive_failures or endpoint.status == WebhookEndpoint.Status.FAILING:
            endpoint.consecutive_failures = 0
            endpoint.status = WebhookEndpoint.Status.ENABLED
            endpoint.save(update_fields=["consecutive_failures", "status"])
        return None
    endpoint.consecutive_failures += 1
    if endpoint.status == WebhookEndpoint.Status.ENABLED and \
            endpoint.consecutive_failures >= settings.NOTIFICATIONS_FAILING_AFTER:
        endpoint.status = WebhookEndpoint.Status.FAILING
        logger.warning("event=webhook_endpoint_failing endpoint=%s failures=%s", endpoint.id,
                       endpoint.consecutive_failures)
    endpoint.save(update_fields=["consecutive_failures", "status"])
    if attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, attempts=attempts,
                                                       last_status_code=status_code, next_attempt_at=None)
        logger.error("event=webhook_delivery_failed delivery=%s event=%s endpoint=%s attempts=%s",
                     delivery.pk, delivery.event_id, endpoint.id, attempts)
        return None
    delay = delivery_delay(attempts)
    Delivery.objects.filter(pk=delivery.pk).update(attempts=attempts, last_status_code=status_code,
                                                   next_attempt_at=now + timedelta(seconds=delay))
    return delay


def delivery_redeliver(*, delivery_id: int, operator: str, reason: str) -> None:
    """An operator sends a delivery again (a failed one, or one the merchant lost): due now, with
    its attempts counted afresh; the attempt log keeps every earlier try."""
    if not reason.strip():
        raise ValueError("a reason is required")
    with transaction.atomic():
        updated = Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.PENDING, attempts=0,
                                                                 next_attempt_at=timezone.now())
        if not updated:
            raise Delivery.DoesNotExist(delivery_id)
        Redelivery.objects.create(delivery_id=delivery_id, operator=operator[:150], reason=reason[:500])
        logger.info("event=webhook_redeliver delivery=%s operator=%s reason=%s", delivery_id, operator, reason)

        def send() -> None:
            from notifications.tasks import delivery_attempt_task

            delivery_attempt_task.delay(delivery_id=delivery_id, actor=f"operator:{operator}")

        transaction.on_commit(send, robust=True)


def deliveries_redrive_due(*, limit: int = 1000) -> int:
    """The sweeper: deliveries due for a while whose task was lost (a broker outage, a dead worker)."""
    stale = timezone.now() - timedelta(seconds=settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS)
    ids = list(Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=stale)
               .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    from notifications.tasks import delivery_attempt_task

    for delivery_id in ids:
        delivery_attempt_task.delay(delivery_id=delivery_id)
    return len(ids)
