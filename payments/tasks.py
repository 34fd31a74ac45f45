"""Celery tasks: ids in, a service call. Retries with backoff and jitter; the dead-letter
hand-off is decided by the service from the attempts recorded on the order."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from payments import services
from payments.psp.base import PSPRetryableError
from payments.services.customers import payment_event_execute
from payments.services.execution import retry_delay
from payments.services.merchant_events import merchant_events_relay
from payments.services.refunds import refund_schedule_retry

logger = logging.getLogger(__name__)


def _database_backoff(task, exc: OperationalError, **ids: str):
    """The database, or the connection pool in front of it, did not answer in time (every
    connection busy, PostgreSQL down): say so clearly and try again later. Whatever was
    committed stays; the PSP key makes a second call safe; the sweeper is the backstop."""
    delay = retry_delay(task.request.retries + 1)
    logger.error("event=database_unavailable task=%s %s delay=%.2f error=%s", task.name,
                 " ".join(f"{k}={v}" for k, v in ids.items()), delay, exc)
    return task.retry(countdown=delay, exc=exc)


@shared_task(bind=True, name="payments.payment_order_execute", acks_late=True, max_retries=None)
def payment_order_execute_task(self, *, payment_order_id: str) -> str:
    try:
        return services.payment_order_execute(payment_order_id=payment_order_id)
    except PSPRetryableError as exc:
        delay = services.payment_order_schedule_retry(payment_order_id=payment_order_id, error=str(exc),
                                                      actor="task:payment_order_execute",
                                                      psp_call=getattr(exc, "psp_call", None))
        if delay is None:
            return "dead_letter"
        logger.warning("event=payment_order_retry order=%s delay=%.2f error=%s", payment_order_id, delay, exc)
        raise self.retry(countdown=delay, exc=exc) from exc
    except OperationalError as exc:
        raise _database_backoff(self, exc, order=payment_order_id) from exc


@shared_task(bind=True, name="payments.payment_event_execute", acks_late=True, max_retries=5)
def payment_event_execute_task(self, *, payment_event_id: str) -> int:
    try:
        return payment_event_execute(payment_event_id=payment_event_id)
    except PSPRetryableError as exc:
        # Bounded: past the last retry the sweeper enqueues the orders, which ready the method themselves.
        raise self.retry(countdown=retry_delay(self.request.retries + 1), exc=exc) from exc


@shared_task(bind=True, name="payments.refund_execute", acks_late=True, max_retries=None)
def refund_execute_task(self, *, refund_id: str) -> str:
    try:
        return services.refund_execute(refund_id=refund_id)
    except PSPRetryableError as exc:
        delay = refund_schedule_retry(refund_id=refund_id, error=str(exc))
        if delay is None:
            return "done"
        logger.warning("event=refund_retry refund=%s delay=%.2f error=%s", refund_id, delay, exc)
        raise self.retry(countdown=delay, exc=exc) from exc
    except OperationalError as exc:
        raise _database_backoff(self, exc, refund=refund_id) from exc


@shared_task(name="payments.merchant_events_relay")
def merchant_events_relay_task() -> int:
    """Hand payments' outbox of merchant events to notifications (outbound webhooks)."""
    return merchant_events_relay()


@shared_task(name="payments.sweeper")
def sweeper_task() -> int:
    """Re-drive orders and refunds whose task was lost."""
    return services.payment_orders_redrive_stalled()


@shared_task(name="payments.janitor")
def janitor_task() -> int:
    """Ask the PSP about orders in an unknown or pending state, and expire abandoned 3-D Secure challenges."""
    return services.payment_orders_resolve_unknown() + services.payment_orders_expire_actions()
