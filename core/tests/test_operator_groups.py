import pytest

from core.tests.helpers import operator_client
from payments.models import PaymentOrderState
from payments.tests.factories import PaymentOrderFactory

pytestmark = pytest.mark.django_db


def test_payment_operators_see_payments_and_may_replay_but_not_edit():
    order = PaymentOrderFactory(state=PaymentOrderState.DEAD_LETTER)
    client = operator_client("pat", "Payment operators")
    assert client.get("/admin/payments/paymentorder/").status_code == 200
    assert client.get("/admin/ledger/entry/").status_code == 200
    assert b"replay_dead_letter" in client.get("/admin/payments/paymentorder/").content
    assert client.get(f"/admin/payments/seller/{order.seller_id}/change/").status_code == 200
    assert client.post(f"/admin/payments/seller/{order.seller_id}/change/", {"name": "x"}).status_code == 403


def test_finance_operators_cannot_replay_payments():
    PaymentOrderFactory(state=PaymentOrderState.DEAD_LETTER)
    client = operator_client("fin", "Finance operators")
    page = client.get("/admin/payments/paymentorder/")
    assert page.status_code == 200
    assert b"replay_dead_letter" not in page.content
