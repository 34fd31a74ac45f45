"""The PSP's ``charge.dispute.*`` webhooks, handed over by payments' inbox (``PSP_WEBHOOK_HANDLERS``): stored
there like every event, applied here in the inbox row's transaction."""
from __future__ import annotations

import logging

from payments.models import WebhookEvent

from .exceptions import DisputeReportInvalid
from .psp import stripe_dispute_report, stripe_is_inquiry
from .services import dispute_report_apply

logger = logging.getLogger(__name__)


def dispute_webhook_apply(*, event: dict, actor: str) -> str:
    """Apply one dispute event: ``processed`` once the dispute is stored (booked, or kept with its problem for
    an operator: an unknown charge moves no money); ``ignored`` for an inquiry (no money moves at the PSP) or a
    dispute object we cannot read (logged). A dispute on an order whose payment is still undecided raises
    ``DisputeOrderUndecided``: nothing is stored, the event fails and the PSP sends it again."""
    obj = (event.get("data") or {}).get("object") or {}
    if stripe_is_inquiry(obj):
        logger.info("event=dispute_inquiry_ignored webhook_event=%s dispute=%s", event.get("id"), obj.get("id"))
        return WebhookEvent.Status.IGNORED
    try:
        report = stripe_dispute_report(obj)
    except DisputeReportInvalid as exc:
        logger.warning("event=dispute_webhook_unreadable webhook_event=%s reason=%s", event.get("id"), exc)
        return WebhookEvent.Status.IGNORED
    dispute_report_apply(report=report, actor=actor)
    return WebhookEvent.Status.PROCESSED
