"""Hand work to Celery only once the transaction that made it has committed."""
from functools import partial

from django.db import transaction


def _send_payment_order(payment_order_id: str) -> None:
    from payments.tasks import payment_order_execute_task

    payment_order_execute_task.delay(payment_order_id=payment_order_id)


def _send_refund(refund_id: str) -> None:
    from payments.tasks import refund_execute_task

    refund_execute_task.delay(refund_id=refund_id)


def enqueue_payment_order(payment_order_id: str) -> None:
    transaction.on_commit(partial(_send_payment_order, payment_order_id))


def enqueue_refund(refund_id: str) -> None:
    transaction.on_commit(partial(_send_refund, refund_id))
