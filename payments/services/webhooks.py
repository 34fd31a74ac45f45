"""The PSP's webhooks: verified, stored in an inbox (one row per event id), then processed
idempotently through the same services the tasks and the janitor use."""
from __future__ import annotations

import logging
import traceback

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from payments.models import PaymentOrder, Refund, WebhookEvent
from payments.psp import get_psp
from payments.psp.base import WebhookSignatureError
from payments.services.execution import payment_order_apply_result
from payments.services.refunds import refund_apply_result

logger = logging.getLogger(__name__)


def webhook_event_receive(*, payload: bytes, signature: str) -> tuple[WebhookEvent, bool]:
    """Verify and store one delivery. Returns ``(event, created)``; a duplicate delivery is
    counted and not stored again. Raises ``WebhookSignatureError`` for a forged or stale one."""
    event = get_psp().verify_webhook(payload, signature)
    event_id = str(event.get("id") or "")
    if not event_id:
        raise WebhookSignatureError("the event has no id")
    obj = (event.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(id=event_id, type=str(event.get("type", ""))[:100], payload=event,
                                               object_id=str(obj.get("id", ""))[:100]), True
    except IntegrityError:
        WebhookEvent.objects.filter(pk=event_id).update(deliveries=F("deliveries") + 1)
        return WebhookEvent.objects.get(pk=event_id), False


def webhook_event_process(*, event_id: str, actor: str | None = None) -> str:
    """Apply a stored event. Safe to run again: a processed event is left alone, and the
    services it calls never move a decided order. A failure is kept on the row for re-running."""
    actor = actor or f"webhook:{event_id}"
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().get(pk=event_id)
            if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
                return event.status
            event.status = _apply(event, actor)
            event.attempts += 1
            event.processed_at = timezone.now()
            event.last_error = ""
            event.save(update_fields=["status", "attempts", "processed_at", "last_error"])
            return event.status
    except Exception:
        logger.exception("event=webhook_processing_failed webhook_event=%s", event_id)
        WebhookEvent.objects.filter(pk=event_id).update(
            status=WebhookEvent.Status.FAILED, attempts=F("attempts") + 1, last_error=traceback.format_exc()[-4000:])
        return WebhookEvent.Status.FAILED


def _apply(event: WebhookEvent, actor: str) -> str:
    notice = get_psp().webhook_notice(event.payload)
    if notice.payment is not None:
        order_id = notice.payment_order_id or PaymentOrder.objects.filter(
            psp_reference=notice.object_id).values_list("id", flat=True).first()
        if not order_id or not PaymentOrder.objects.filter(pk=order_id).exists():
            return WebhookEvent.Status.IGNORED  # not one of ours
        payment_order_apply_result(payment_order_id=order_id, result=notice.payment, actor=actor)
        return WebhookEvent.Status.PROCESSED
    if notice.refund is not None:
        refund_id = notice.refund_id or Refund.objects.filter(
            psp_reference=notice.refund.psp_reference).values_list("id", flat=True).first()
        if not refund_id or not Refund.objects.filter(pk=refund_id).exists():
            return WebhookEvent.Status.IGNORED
        refund_apply_result(refund_id=refund_id, result=notice.refund, actor=actor)
        return WebhookEvent.Status.PROCESSED
    return WebhookEvent.Status.IGNORED
