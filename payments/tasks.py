"""Celery tasks: ids in, a service call, retries with backoff and jitter."""
from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from payments import services
from payments.psp.base import PSPRetryableError

logger = logging.getLogger(__name__)


def retry_delay(retries: int) -> float:
    """Exponential backoff with jitter ("equal jitter"): half fixed, half random."""
    ceiling = min(settings.PAYMENT_RETRY_MAX_SECONDS, settings.PAYMENT_RETRY_BASE_SECONDS * 2**retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@shared_task(bind=True, name="payments.payment_order_execute", acks_late=True, max_retries=None)
def payment_order_execute_task(self, *, payment_order_id: str) -> str:
    try:
        return services.payment_order_execute(payment_order_id=payment_order_id)
    except PSPRetryableError as exc:
        if self.request.retries >= settings.PAYMENT_EXECUTE_MAX_RETRIES:
            logger.error("event=payment_order_retries_exhausted order=%s error=%s", payment_order_id, exc)
            raise
        delay = retry_delay(self.request.retries)
        logger.warning("event=payment_order_retry order=%s attempt=%s delay=%.2f error=%s",
                       payment_order_id, self.request.retries + 1, delay, exc)
        raise self.retry(countdown=delay, exc=exc) from exc
