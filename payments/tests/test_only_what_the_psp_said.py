"""Only the payment we asked for moves money; another PaymentIntent's success for a decided order
is kept as a suspected double charge, refunded by an operator in one audited click."""
import pytest

from payments.models import PaymentOrderState, SuspectedDoubleCharge
from payments.psp import get_psp
from payments.psp.base import PaymentRequest, PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result_or_dead_letter
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_checkout_flow import sandbox_money
from wallet import selectors as wallet_selectors


def success(order, *, psp_reference="pi_1", payment_order_id=None, amount=1000):
    return PaymentResult(status=PaymentStatus.SUCCEEDED, psp_reference=psp_reference, amount=amount, currency="usd",
                         payment_order_id=order.id if payment_order_id is None else payment_order_id)


def apply(order, result):
    return payment_order_apply_result_or_dead_letter(payment_order_id=order.id, result=result, actor="webhook:evt_x")


@pytest.mark.django_db
def test_a_success_for_another_order_moves_no_money():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING)
    assert apply(order, success(order, payment_order_id="ord_someone_else")) == PaymentOrderState.DEAD_LETTER
    order.refresh_from_db()
    assert order.failure_code == "psp_mismatch"
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0


@pytest.mark.django_db
def test_a_success_for_another_payment_intent_than_the_one_on_record_moves_no_money():
    order = PaymentOrderFactory(state=PaymentOrderState.PENDING, psp_reference="pi_sent")
    assert apply(order, success(order, psp_reference="pi_invented")) == PaymentOrderState.DEAD_LETTER
    order.refresh_from_db()
    assert order.failure_code == "psp_mismatch" and order.psp_reference == "pi_sent"
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "kind"), [(PaymentOrderState.SUCCEEDED, "double_charge"),
                                             (PaymentOrderState.FAILED, "captured_for_failed_order")])
def test_another_success_for_a_decided_order_is_kept_once_and_moves_no_money(state, kind):
    order = PaymentOrderFactory(state=state, psp_reference="pi_first")
    for _ in range(2):  # a webhook and the janitor, say
        assert apply(order, success(order, psp_reference="pi_second")) == state
    suspected = SuspectedDoubleCharge.objects.get()
    assert (suspected.payment_order_id, suspected.kind, suspected.amount, suspected.state) == (
        order.id, kind, 1000, "open")
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0


@pytest.mark.django_db
def test_a_failed_orders_own_payment_captured_later_is_kept_for_an_operator_and_moves_no_money():
    order = PaymentOrderFactory(state=PaymentOrderState.FAILED, psp_reference="pi_same")
    for _ in range(2):
        assert apply(order, success(order, psp_reference="pi_same")) == PaymentOrderState.FAILED
    suspected = SuspectedDoubleCharge.objects.get()
    assert (suspected.psp_reference, suspected.kind, suspected.amount) == ("pi_same", "captured_for_failed_order", 1000)
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0


@pytest.mark.django_db(transaction=True)
def test_an_operator_refunds_the_extra_charge_once(sandbox, admin_client, client, django_user_model):
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING)
    first = get_psp().create_payment(_request(order, key=order.id))
    assert apply(order, first) == PaymentOrderState.SUCCEEDED
    extra = get_psp().create_payment(_request(order, key=f"{order.id}-duplicate"))  # a charge we never asked for
    assert apply(order, extra) == PaymentOrderState.SUCCEEDED
    suspected = SuspectedDoubleCharge.objects.get(psp_reference=extra.psp_reference)

    page = admin_client.get("/admin/")
    assert page.context["attention"]["suspected_double_charges"] == 1

    finance = django_user_model.objects.create_user("fin", password="x" * 16, is_staff=True)
    client.force_login(finance)  # no permission: the action isn't offered
    url = "/admin/payments/suspecteddoublecharge/"
    refused = client.post(url, {"action": "refund_extra_charge", "_selected_action": [suspected.pk],
                                "confirmed": "1", "reason": "x"})
    assert refused.status_code in (302, 403) and SuspectedDoubleCharge.objects.get().state == "open"

    for _ in range(2):
        done = admin_client.post(url, {"action": "refund_extra_charge", "_selected_action": [suspected.pk],
                                       "confirmed": "1", "reason": "buyer charged twice (TICKET-7)"})
        assert done.status_code == 302
    suspected.refresh_from_db()
    assert suspected.state == "refunded" and suspected.resolved_by == "operator:admin"
    assert suspected.resolved_reason == "buyer charged twice (TICKET-7)" and suspected.refund_psp_reference
    refunds = sandbox_money(sandbox)["refunds"]
    assert [(r["payment_intent"], r["amount"]) for r in refunds] == [(extra.psp_reference, 1000)]
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1000  # the order's own


def _request(order, *, key):
    return PaymentRequest(idempotency_key=key, payment_order_id=order.id, amount=order.amount,
                          currency=order.currency, payment_method="pm_card_visa")
