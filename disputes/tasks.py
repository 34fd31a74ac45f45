"""Celery tasks of disputes: a service call each."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from disputes import services


@shared_task(name="disputes.recover")
def disputes_recover_task() -> int:
    """Run again the dispute webhooks left unfinished (Celery beat, DISPUTES_RECOVERY_INTERVAL_SECONDS)."""
    return services.dispute_webhooks_recover(older_than_seconds=settings.DISPUTES_RECOVERY_INTERVAL_SECONDS)
