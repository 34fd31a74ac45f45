"""``OutputSerializer`` shares its bound fields between instances: it must render exactly what DRF's own
per-instance fields render, from any thread."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework import serializers

from payments.models import PaymentOrderState
from payments.serializers import PaymentEventOutput, PaymentOrderDetailOutput, PaymentOrderOutput, RefundOutput
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory

pytestmark = pytest.mark.django_db


def _generic(output_class):
    """The same serializer with DRF's default: every field deep-copied for each instance."""
    return type(f"Generic{output_class.__name__}", (output_class,), {"fields": serializers.Serializer.fields})


@pytest.fixture
def event():
    event = PaymentEventFactory(buyer_email="b@example.com")
    PaymentOrderFactory(payment_event=event, amount=1234, state=PaymentOrderState.SUCCEEDED, psp_reference="pi_1")
    PaymentOrderFactory(payment_event=event, amount=99, state=PaymentOrderState.REQUIRES_ACTION,
                        next_action_url="https://psp.example/3ds/1")
    return event


def test_renders_what_drf_renders(event):
    rendered = PaymentEventOutput(event).data
    assert rendered == _generic(PaymentEventOutput)(event).data
    assert [o["next_action"] for o in rendered["orders"]] == [
        None, {"type": "redirect_to_url", "redirect_to_url": {"url": "https://psp.example/3ds/1"}}]
    for order in event.orders.all():
        for output in (PaymentOrderOutput, PaymentOrderDetailOutput):
            assert output(order).data == _generic(output)(order).data
    assert PaymentEventOutput(event).fields is PaymentEventOutput(None).fields  # built once per class
    assert set(PaymentOrderDetailOutput(None).fields) == set(PaymentOrderOutput(None).fields) | {"refunds"}
    assert RefundOutput([], many=True).data == []


def test_instances_in_many_threads_render_their_own_object(event):
    other = PaymentEventFactory(buyer_email="c@example.com")
    PaymentOrderFactory(payment_event=other, amount=5000)
    for obj in (event, other):
        obj._created_orders = list(obj.orders.all())  # the threads render without the database
    objects = [event, other] * 100
    expected = {obj.pk: _generic(PaymentEventOutput)(obj).data for obj in (event, other)}
    with ThreadPoolExecutor(8) as pool:
        rendered = list(pool.map(lambda obj: (obj.pk, PaymentEventOutput(obj).data), objects))
    assert all(data == expected[pk] for pk, data in rendered)
