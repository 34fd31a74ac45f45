"""Hand work to Celery only once the transaction that made it has committed.

``robust=True``: if the broker is down, the failure is logged and the request that
committed the work still answers; the sweeper enqueues the work once its lease expires."""
from django.db import transaction


def enqueue_payment_order(payment_order_id: str) -> None:
    def send_payment_order() -> None:
        from payments.tasks import payment_order_execute_task

        payment_order_execute_task.delay(payment_order_id=payment_order_id)

    transaction.on_commit(send_payment_order, robust=True)


def enqueue_payment_event(payment_event_id: str) -> None:
    """One publish for a checkout of several orders: its task readies the buyer's payment
    method once, then hands out the orders."""
    def send_payment_event() -> None:
        from payments.tasks import payment_event_execute_task

        payment_event_execute_task.delay(payment_event_id=payment_event_id)

    transaction.on_commit(send_payment_event, robust=True)


def enqueue_refund(refund_id: str) -> None:
    def send_refund() -> None:
        from payments.tasks import refund_execute_task

        refund_execute_task.delay(refund_id=refund_id)

    transaction.on_commit(send_refund, robust=True)
