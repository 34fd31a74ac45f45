"""The PSP's Connect webhooks (payout.*): verified with the Connect endpoint's secret, stored in an inbox
(one row per event id), then applied through the same service the task and the recovery round use."""
from __future__ import annotations

import logging

from core.services import webhook_inbox_process, webhook_inbox_store
from payouts.models import Payout, PayoutWebhookEvent
from payouts.psp import get_payout_provider
from payouts.services.execution import payout_apply_result_or_dead_letter

logger = logging.getLogger(__name__)
Status = PayoutWebhookEvent.Status


def payout_webhook_receive(*, event: dict) -> tuple[PayoutWebhookEvent, bool]:
    """Store one verified event (its shape checked by the caller). Returns ``(event, created)``; a
    duplicate delivery is counted, not stored again."""
    return webhook_inbox_store(inbox=PayoutWebhookEvent, event=event,
                               psp_account_id=str(event.get("account") or "")[:100])


def payout_webhook_process(*, event_id: str) -> str:
    """Apply a stored event. Safe to run again: a processed one is left alone and a decided payout never
    changes. A failure is kept on the row (the PSP sends it again, which runs it again)."""
    return webhook_inbox_process(inbox=PayoutWebhookEvent, event_id=event_id,
                                 apply=lambda event: _apply(event, f"webhook:{event_id}"),
                                 failure_event="payout_webhook_failed")


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
