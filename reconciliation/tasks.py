"""Celery tasks: ids and dates in, a service call, nothing else."""
from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from reconciliation.services import settlement_inbox_process


@shared_task(name="reconciliation.nightly")
def reconciliation_nightly(day: str | None = None) -> dict:
    """Import every new file of ``RECONCILIATION_INBOX_DIR`` and reconcile ``day`` (default: yesterday).

    Idempotent: files are imported once per content and a re-run adds no breaks or postings.
    """
    business_day = date.fromisoformat(day) if day else timezone.now().date() - timedelta(days=1)
    result = settlement_inbox_process(inbox=settings.RECONCILIATION_INBOX_DIR, day=business_day,
                                      actor="task:reconciliation_nightly")
    return {"imported": [r.file.name for r in result.imported], "skipped": result.skipped,
            "failed": result.failed, "run": result.run.pk if result.run else None}
