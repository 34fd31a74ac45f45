"""Hand work to Celery only once the transaction that made it has committed.

``robust=True``: if the broker is down, the failure is logged and the request that
committed the work still answers; the sweeper enqueues the work once its lease expires."""
from django.db import transaction

from core.broker import task_push


def task_publish(task, *, options: dict | None = None, **kwargs: str) -> None:
    """``task.delay(**kwargs)`` for ids, without what a publish paid for nothing: the arguments' log form is
    written plainly (Celery's ``saferepr`` walks them in Python), and the message goes straight to its Redis
    list (``core.broker.task_push``: the same message, one LPUSH; Celery's own ``apply_async`` for a first
    publish, which declares the queue, and whenever it would do more). ``options``: ``apply_async``'s
    (``countdown``, ``retries``)."""
    task_push(task, argsrepr="()", kwargsrepr=repr(kwargs), options=options, **kwargs)


def enqueue_payment_order(payment_order_id: str) -> None:
    def send_payment_order() -> None:
        from payments.tasks import payment_order_execute_task

        task_publish(payment_order_execute_task, payment_order_id=payment_order_id)

    transaction.on_commit(send_payment_order, robust=True)


def enqueue_payment_event(payment_event_id: str) -> None:
    """One publish for a checkout of several orders: its task readies the buyer's payment
    method once, then executes the orders itself."""
    def send_payment_event() -> None:
        from payments.tasks import payment_event_execute_task

        task_publish(payment_event_execute_task, payment_event_id=payment_event_id)

    transaction.on_commit(send_payment_event, robust=True)


def enqueue_refund(refund_id: str) -> None:
    def send_refund() -> None:
        from payments.tasks import refund_execute_task

        task_publish(refund_execute_task, refund_id=refund_id)

    transaction.on_commit(send_refund, robust=True)
