"""Money moves once however the reports of one outcome race, and a worker that dies between the
PSP's answer and its commit does not charge twice when its order is run again."""
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from conftest import wait_for
from ledger import selectors as ledger_selectors
from ledger.models import LedgerTransaction
from payments import services
from payments.models import PaymentOrder, PaymentOrderState
from payments.psp import get_psp
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result, payment_request
from payments.services.postings import capture_posting_key
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean, sandbox_money
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db(transaction=True)


def test_ten_concurrent_success_reports_all_answer_succeeded_with_one_posting():
    """A task, the janitor and duplicated webhooks report the same success at once."""
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=1000)
    result = PaymentResult(status=PaymentStatus.SUCCEEDED, psp_reference="pi_race", amount=1000, currency="usd",
                           payment_order_id=order.id)
    actors = ["task:payment_order_execute", "janitor", *[f"webhook:evt_{n}" for n in range(8)]]
    barrier, answers, errors = threading.Barrier(len(actors)), [], []

    def report(actor):
        try:
            barrier.wait()
            answers.append(payment_order_apply_result(payment_order_id=order.id, result=result, actor=actor))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=report, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and answers == ["succeeded"] * len(actors)
    assert LedgerTransaction.objects.filter(idempotency_key=capture_posting_key(order.id)).count() == 1
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1000
    assert ledger_selectors.trial_balance() == {"usd": 0}
    assert order.transitions.filter(to_state="succeeded").count() == 1
    assert_audit_clean()


def test_a_worker_that_died_after_the_psp_charged_is_redriven_and_charges_once(celery_worker, sandbox):
    """The worker sent the order, the PSP charged it, and the worker died before recording the
    answer: the order is left executing, its lease runs out, the sweeper sends it again under
    the same key, and the PSP answers with the charge it made. Asserted on the PSP's own record."""
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, attempts=1,
                                next_action_at=timezone.now() - timedelta(seconds=1))
    # Exactly what the dead worker's call sent, and the PSP charged:
    charged = get_psp().create_payment(payment_request(order, payment_method="pm_card_visa"))
    assert charged.status is PaymentStatus.SUCCEEDED
    assert PaymentOrder.objects.get(pk=order.pk).state == PaymentOrderState.EXECUTING  # nothing recorded

    assert services.payment_orders_redrive_stalled() == 1
    wait_for(lambda: PaymentOrder.objects.get(pk=order.pk).state == PaymentOrderState.SUCCEEDED,
             message="the redriven order")
    order.refresh_from_db()
    assert order.psp_reference == charged.psp_reference
    money = sandbox_money(sandbox)
    mine = [c for c in money["charges"] if c["payment_order_id"] == order.id]
    assert len(mine) == 1 and money["double_charges"] == []
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == order.amount
    assert_audit_clean()
