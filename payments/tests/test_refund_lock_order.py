"""The worker sending a refund and the PSP's answer being recorded at the same moment lock the order and the
refund in one order (the order first), so they never deadlock."""
import threading

import pytest
from django.db import connection, transaction
from django.db.models import F

from conftest import wait_for
from payments.models import PaymentOrder, Refund, RefundState
from payments.services.refunds import payment_order_lock, refund_execute
from payments.tests.test_psp_faults import one_order, wait_state


def waits_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid])
        return bool((cur.fetchone() or [False])[0])


@pytest.mark.django_db(transaction=True)
def test_refund_execute_and_an_answer_being_recorded_do_not_deadlock(api, sandbox):
    order = wait_state(one_order(api, amount=1000), "succeeded")
    PaymentOrder.objects.filter(pk=order.pk).update(amount_refunded=F("amount_refunded") + 300)
    # Made by hand, not by refund_create: no task is enqueued, only this test's thread sends it.
    refund = Refund.objects.create(payment_order=order, amount=300, currency="usd")
    errors, pids = [], []

    def execute():
        try:
            connection.ensure_connection()
            pids.append(connection.connection.info.backend_pid)
            refund_execute(refund_id=refund.id)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
        finally:
            connection.close()

    sender = threading.Thread(target=execute)
    with transaction.atomic():  # as refund_apply_result does: the order, then the refund
        payment_order_lock(payment_order_id=order.id)
        sender.start()
        wait_for(lambda: pids and waits_for_a_lock(pids[0]), timeout=20,
                 message="the worker's refund to wait for the order")
        Refund.objects.select_for_update().get(pk=refund.id)  # a deadlock, were the worker holding the refund
    sender.join()
    assert errors == []
    done = Refund.objects.get(pk=refund.id)
    assert (done.state, done.attempts) == (RefundState.SUCCEEDED, 1)
