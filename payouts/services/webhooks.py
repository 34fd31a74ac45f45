"""The PSP's Connect webhooks (payout.*): verified with the Connect endpoint's secret, stored in an inbox
(one row per event id), then applied through the same service the task and the recovery round use."""
from __future__ import annotations

import logging
import traceback

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from payouts.models import Payout, PayoutWebhookEvent
from payouts.psp import get_payout_provider
from payouts.services.execution import payout_apply_result_or_dead_letter

logger = logging.getLogger(__name__)
Status = PayoutWebhookEvent.Status


def payout_webhook_receive(*, event: dict) -> tuple[PayoutWebhookEvent, bool]:
    """Store one verified event (its shape checked by the caller). Returns ``(event, created)``; a
    duplicate delivery is counted, not stored again."""
    obj = event["data"]["object"]
    try:
        with transaction.atomic():
            return PayoutWebhookEvent.objects.create(
                id=event["id"], type=event["type"], payload=event, object_id=str(obj.get("id", ""))[:100],
                psp_account_id=str(event.get("account") or "")[:100]), True
    except IntegrityError:
        PayoutWebhookEvent.objects.filter(pk=event["id"]).update(deliveries=F("deliveries") + 1)
        return PayoutWebhookEvent.objects.get(pk=event["id"]), False


def payout_webhook_process(*, event_id: str) -> str:
    """Apply a stored event. Safe to run again: a processed one is left alone and a decided payout never
    changes. A failure is kept on the row (the PSP sends it again, which runs it again)."""
    actor = f"webhook:{event_id}"
    try:
        with transaction.atomic():
            event = PayoutWebhookEvent.objects.select_for_update().get(pk=event_id)
            if event.status in (Status.PROCESSED, Status.IGNORED):
                return event.status
            event.status = _apply(event, actor)
            event.attempts += 1
            event.processed_at = timezone.now()
            event.last_error = ""
            event.save(update_fields=["status", "attempts", "processed_at", "last_error"])
            return event.status
    except Exception:
        logger.exception("event=payout_webhook_failed webhook_event=%s", event_id)
        PayoutWebhookEvent.objects.filter(pk=event_id).update(
            status=Status.FAILED, attempts=F("attempts") + 1, last_error=traceback.format_exc()[-4000:])
        return Status.FAILED


def _apply(event: PayoutWebhookEvent, actor: str) -> str:
    notice = get_payout_provider().webhook_notice(event.payload)
    if notice.payout is None:
        return Status.IGNORED
    payout_id = notice.payout.payout_id or Payout.objects.filter(
        psp_payout_id=notice.payout.psp_reference).values_list("id", flat=True).first()
    if not payout_id or not Payout.objects.filter(pk=payout_id).exists():
        return Status.IGNORED  # not one of ours
    payout_apply_result_or_dead_letter(payout_id=payout_id, result=notice.payout, actor=actor)
    return Status.PROCESSED
