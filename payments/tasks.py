"""Celery tasks: ids in, a service call. Retries with backoff and jitter; the dead-letter
hand-off is decided by the service from the attempts recorded on the order."""
from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import OperationalError

from payments import services
from payments.models import PaymentEvent
from payments.psp.base import PSPRetryableError
from payments.services.enqueue import task_publish
from payments.services.execution import retry_delay
from payments.services.merchant_events import merchant_events_relay
from payments.services.refunds import refund_schedule_retry

logger = logging.getLogger(__name__)
ORDER_TASK = "payments.payment_order_execute"


def _database_delay(name: str, retries: int, exc: OperationalError, **ids: str) -> float:
    """The database, or the connection pool in front of it, did not answer in time (every
    connection busy, PostgreSQL down): say so clearly and try again later. Whatever was
    committed stays; the PSP key makes a second call safe; the sweeper is the backstop."""
    delay = retry_delay(retries + 1)
    logger.error("event=database_unavailable task=%s %s delay=%.2f error=%s", name,
                 " ".join(f"{k}={v}" for k, v in ids.items()), delay, exc)
    return delay


def _database_backoff(task, exc: OperationalError, **ids: str):
    return task.retry(countdown=_database_delay(task.name, task.request.retries, exc, **ids), exc=exc)


class _TryAgain(Exception):
    """An order's attempt ended retryable: its task tries it again after ``delay`` seconds."""

    def __init__(self, delay: float, exc: Exception) -> None:
        super().__init__(str(exc))
        self.delay, self.exc = delay, exc


def _order_attempt(payment_order_id: str, *, retries: int, event: PaymentEvent | None = None) -> str:
    """One attempt at an order, wherever it runs (its own task, or its event's). A retryable PSP error
    schedules the retry on the order (or sends it to the dead letter once its attempts are used up),
    an unavailable database backs off by the task's retries: both raise ``_TryAgain``."""
    try:
        return services.payment_order_execute(payment_order_id=payment_order_id, event=event)
    except PSPRetryableError as exc:
        delay = services.payment_order_schedule_retry(payment_order_id=payment_order_id, error=str(exc),
                                                      actor="task:payment_order_execute",
                                                      psp_call=getattr(exc, "psp_call", None))
        if delay is None:
            return "dead_letter"
        logger.warning("event=payment_order_retry order=%s delay=%.2f error=%s", payment_order_id, delay, exc)
        raise _TryAgain(delay, exc) from exc
    except OperationalError as exc:
        delay = _database_delay(ORDER_TASK, retries, exc, order=payment_order_id)
        raise _TryAgain(delay, exc) from exc


@shared_task(bind=True, name=ORDER_TASK, acks_late=True, max_retries=None)
def payment_order_execute_task(self, *, payment_order_id: str) -> str:
    try:
        return _order_attempt(payment_order_id, retries=self.request.retries)
    except _TryAgain as again:
        raise self.retry(countdown=again.delay, exc=again.exc) from again.exc


#: Past this long in one event's task, its orders left are each sent to a task of their own: a task must
#: end well within the broker's visibility timeout (600 s), past which Redis delivers it again.
EVENT_INLINE_SECONDS = 60.0


def _hand_off(payment_order_id: str, **options) -> None:
    """The order to its own task (``options``: ``countdown`` and ``retries`` of a retry, as its task's own
    retry would send it). A broker that refuses it is logged: the sweeper sends the order once it is due."""
    try:
        task_publish(payment_order_execute_task, options=options, payment_order_id=payment_order_id)
    except Exception:  # noqa: BLE001  (as transaction.on_commit(robust=True): the sweeper is the backstop)
        logger.exception("event=payment_order_hand_off_failed order=%s", payment_order_id)


def payment_event_orders_execute(order_ids: list[str], *, budget: float = EVENT_INLINE_SECONDS,
                                 event: PaymentEvent | None = None) -> int:
    """The event's orders, one after the other in its task, each as its own task would execute it (its
    key, its claim, its transaction). One whose attempt ends retryable goes to its own task with the
    backoff its task would have taken; past ``budget`` seconds the rest go to their own tasks. ``event``:
    their event as the task read it, handed to each claim instead of being read again."""
    deadline = time.monotonic() + budget
    for index, order_id in enumerate(order_ids):
        if time.monotonic() > deadline:
            for rest in order_ids[index:]:
                _hand_off(rest)
            break
        try:
            _order_attempt(order_id, retries=0, event=event)
        except _TryAgain as again:
            _hand_off(order_id, countdown=again.delay, retries=1)
        except Exception:  # noqa: BLE001  (one order's bug must not stop its siblings: the sweeper re-drives it)
            logger.exception("event=payment_order_execute_failed order=%s", order_id)
    return len(order_ids)


@shared_task(bind=True, name="payments.payment_event_execute", acks_late=True, max_retries=5)
def payment_event_execute_task(self, *, payment_event_id: str) -> int:
    """One task per checkout of several orders: the buyer's payment method readied once (one PSP call
    for a new buyer), then the orders executed here rather than published one task each."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    try:
        event, order_ids = services.payment_event_prepare(payment_event_id=payment_event_id,
                                                          redelivered=redelivered)
    except PSPRetryableError as exc:
        # Bounded: past the last retry the sweeper enqueues the orders, which ready the method themselves.
        raise self.retry(countdown=retry_delay(self.request.retries + 1), exc=exc) from exc
    except OperationalError as exc:
        raise _database_backoff(self, exc, event=payment_event_id) from exc
    return payment_event_orders_execute(order_ids, event=event)


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
