"""``core.db.objects_insert``: new rows of several models in one statement, as Django's insert writes them."""
import pytest

from core.db import objects_insert
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition
from payments.tests.factories import ApiClientFactory, SellerFactory

pytestmark = pytest.mark.django_db


def test_parents_children_and_audit_rows_in_one_statement_with_their_defaults(django_assert_num_queries):
    client = ApiClientFactory()
    sellers = [SellerFactory(client=client) for _ in range(2)]
    event = PaymentEvent(client=client, buyer_reference="b", payment_method="pm_card_visa", idempotency_key="k")
    orders = [PaymentOrder(payment_event=event, seller=sellers[i], amount=500 + i, currency="usd") for i in range(2)]
    audit = [PaymentOrderTransition(payment_order=o, from_state="", to_state="not_started", actor="a", reason="r")
             for o in orders]
    with django_assert_num_queries(1):
        objects_insert([event], orders, audit)
    stored = PaymentOrder.objects.filter(payment_event_id=event.id).order_by("amount")
    assert [(o.id, o.amount, o.state, o.attempts, o.psp_reference) for o in stored] == [
        (orders[0].id, 500, "not_started", 0, ""), (orders[1].id, 501, "not_started", 0, "")]
    assert stored[0].created_at == orders[0].created_at is not None  # auto_now_add, set on the instance too
    assert PaymentEvent.objects.get(pk=event.pk).state == "processing"
    assert PaymentOrderTransition.objects.filter(payment_order__payment_event=event).count() == 2
    assert not event._state.adding and not orders[0]._state.adding
