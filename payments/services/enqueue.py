"""Hand work to Celery only once the transaction that made it has committed.

``robust=True``: if the broker is down, the failure is logged and the request that
committed the work still answers; the sweeper enqueues the work once its lease expires."""
from django.db import transaction

_declared: set[str] = set()


def task_publish(task, *, options: dict | None = None, **kwargs: str) -> None:
    """``task.delay(**kwargs)`` for ids, without what a publish paid for nothing (a quarter of its CPU):
    the arguments' log form is written plainly (Celery's ``saferepr`` walks them in Python), and the
    queue is declared on the process's first publish only (Celery re-checks it on every one; a Redis
    list needs no declaring, and the queue outlives our processes on a broker that does). ``options``:
    ``apply_async``'s (``countdown``, ``retries``)."""
    queue = task.app.conf.task_default_queue
    declare = [] if queue in _declared else None
    task.apply_async(kwargs=kwargs, argsrepr="()", kwargsrepr=repr(kwargs), declare=declare, **(options or {}))
    _declared.add(queue)


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
