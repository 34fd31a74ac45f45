"""Two disputes of one charge reported at the same moment: they book one after the other on the order's row,
so together they never take more than was captured."""
import threading

import pytest
from django.db import connection, transaction

from conftest import wait_for
from disputes import services
from disputes.models import Dispute, DisputeProblem
from payments.services import payment_order_lock
from payments.services.postings import commission_for

from .helpers import captured_order, payable, report, wallet

pytestmark = pytest.mark.django_db(transaction=True)


def lock_waiters(pids: list[int]) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event_type = 'Lock'",
                    [pids])
        return cur.fetchone()[0]


def test_two_disputes_of_one_order_at_once_take_no_more_than_captured():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    errors, pids, barrier = [], [], threading.Barrier(3)

    def dispute_it(psp_dispute_id):
        try:
            connection.ensure_connection()
            pids.append(connection.connection.info.backend_pid)
            barrier.wait()
            services.dispute_report_apply(report=report(psp_dispute_id, amount=6_000, fee=0), actor="test")
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispute_it, args=(f"dp_{n}",)) for n in (1, 2)]
    with transaction.atomic():  # the order held, so that both reports are in flight together
        payment_order_lock(payment_order_id=order.id)
        for t in threads:
            t.start()
        barrier.wait()
        wait_for(lambda: lock_waiters(pids) == 2, timeout=10, message="both disputes to wait for the order's row")
    for t in threads:
        t.join()
    assert errors == []
    disputes = sorted(Dispute.objects.all(), key=lambda d: d.booked)
    assert [d.booked for d in disputes] == [False, True]
    assert disputes[0].problem == DisputeProblem.EXCEEDS_CAPTURED and "disputed 6000" in disputes[0].problem_detail
    assert payable(order.seller_id) == wallet(order.seller_id) == share - 6_000
