"""Celery tasks of disputes: a service call each."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from disputes import services


@shared_task(name="disputes.recover")
def disputes_recover_task() -> int:
    """Run again the dispute webhooks left unfinished, and book the disputes kept for a charge unknown then
    (Celery beat, DISPUTES_RECOVERY_INTERVAL_SECONDS)."""
    rerun = services.dispute_webhooks_recover(older_than_seconds=settings.DISPUTES_RECOVERY_INTERVAL_SECONDS)
    days = settings.DISPUTES_UNKNOWN_CHARGE_RETRY_DAYS
    return rerun + services.disputes_unknown_charges_retry(younger_than_days=days)
