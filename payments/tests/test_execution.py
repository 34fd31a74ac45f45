"""Recording the PSP's answers: monotonic, idempotent, and a contradiction goes to an operator."""
import pytest
from django_fsm import TransitionNotAllowed

from ledger import selectors as ledger_selectors
from payments.models import PaymentOrderState
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result, payment_order_apply_result_or_dead_letter
from payments.tests.factories import PaymentOrderFactory
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db


def result(status, amount=1000, currency="usd"):
    return PaymentResult(status=status, psp_reference="pi_1", amount=amount, currency=currency)


def test_success_applied_twice_moves_money_once():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING)
    for _ in range(2):
        payment_order_apply_result(payment_order_id=order.id, result=result(PaymentStatus.SUCCEEDED), actor="t")
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1000
    assert ledger_selectors.trial_balance() == {"usd": 0}
    assert order.transitions.count() == 1


def test_a_decided_order_never_changes():
    order = PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED)
    assert payment_order_apply_result(payment_order_id=order.id, result=result(PaymentStatus.FAILED),
                                      actor="t") == PaymentOrderState.SUCCEEDED


def test_an_amount_the_order_did_not_ask_for_goes_to_the_dead_letter():
    order = PaymentOrderFactory(state=PaymentOrderState.UNKNOWN)
    state = payment_order_apply_result_or_dead_letter(
        payment_order_id=order.id, result=result(PaymentStatus.SUCCEEDED, amount=999), actor="janitor")
    order.refresh_from_db()
    assert state == order.state == PaymentOrderState.DEAD_LETTER
    assert order.failure_code == "psp_amount_mismatch"
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0


def test_the_state_field_is_protected():
    order = PaymentOrderFactory()
    with pytest.raises(AttributeError):
        order.state = PaymentOrderState.SUCCEEDED
    with pytest.raises(TransitionNotAllowed):
        order.succeed(psp_reference="pi_x")  # not_started cannot jump to succeeded
