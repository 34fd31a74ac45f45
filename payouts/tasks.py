"""Celery tasks of money out: ids in, a service call. Retries with backoff and jitter; the dead-letter
hand-off is decided by the service from the attempts recorded on the payout."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from payments.psp.base import PSPError, PSPRetryableError
from payments.services.execution import retry_delay
from payouts import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="payouts.payout_execute", acks_late=True, max_retries=None)
def payout_execute_task(self, *, payout_id: str) -> str:
    try:
        return services.payout_execute(payout_id=payout_id)
    except PSPRetryableError as exc:
        delay = services.payout_schedule_retry(payout_id=payout_id, error=str(exc), actor="task:payout_execute")
        if delay is None:
            return "dead_letter"
        logger.warning("event=payout_retry payout=%s delay=%.2f error=%s", payout_id, delay, exc)
        raise self.retry(countdown=delay, exc=exc) from exc
    except OperationalError as exc:
        raise self.retry(countdown=retry_delay(self.request.retries + 1), exc=exc) from exc


@shared_task(name="payouts.payout_execute_batch", acks_late=True)
def payouts_execute_batch_task(*, payout_ids: list[str]) -> int:
    """A payout run's batch, fanned out: one ``payout_execute_task`` per payout."""
    for payout_id in payout_ids:
        payout_execute_task.delay(payout_id=payout_id)
    return len(payout_ids)


@shared_task(bind=True, name="payouts.payout_transfer_reverse", acks_late=True, max_retries=8)
def payout_transfer_reverse_task(self, *, payout_id: str) -> bool:
    """Bounded: past the last retry the recovery round enqueues it again."""
    try:
        return services.payout_transfer_reverse(payout_id=payout_id, attempt=self.request.retries)
    except (PSPError, OperationalError) as exc:
        logger.warning("event=payout_reversal_retry payout=%s error=%s", payout_id, exc)
        raise self.retry(countdown=retry_delay(self.request.retries + 1), exc=exc) from exc


@shared_task(name="payouts.recover")
def payouts_recover_task() -> int:
    """Re-send lost payouts, ask the PSP about unanswered and in-transit ones, take back failed transfers."""
    return services.payouts_recover()


@shared_task(name="payouts.run_daily")
def payouts_run_daily_task() -> str:
    """The daily payout run (Celery beat): today's date names it, so a second run the same day adds nothing."""
    run = services.payouts_run(payout_date=timezone.now().date(), actor="task:payouts_run_daily")
    return run.id


@shared_task(name="payouts.write_off_negative_balances")
def negative_balances_write_off_task() -> int:
    """Daily (Celery beat): write off the balances negative for longer than NEGATIVE_BALANCE_WRITE_OFF_DAYS."""
    return len(services.negative_balances_write_off_due())
