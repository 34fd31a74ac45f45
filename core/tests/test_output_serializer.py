"""``OutputSerializer`` shares its bound fields between instances and reads plain attributes itself: it must
render exactly what DRF's own per-instance fields and ``to_representation`` render, from any thread."""
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from core.serializers import ObjectTypeField, OutputSerializer
from payments.models import PaymentOrderState
from payments.serializers import PaymentEventOutput, PaymentOrderDetailOutput, PaymentOrderOutput, RefundOutput
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory

pytestmark = pytest.mark.django_db


def _generic(output_class):
    """The same serializer with DRF's defaults: every field deep-copied for each instance, each object
    rendered by DRF's ``Serializer.to_representation`` (nested ones too)."""
    generic = type(f"Generic{output_class.__name__}", (output_class,), {"fields": serializers.Serializer.fields})

    def render(*args, **kwargs):
        with mock.patch.object(OutputSerializer, "to_representation", serializers.Serializer.to_representation):
            return SimpleNamespace(data=generic(*args, **kwargs).data)
    return render


@pytest.fixture
def event():
    event = PaymentEventFactory(buyer_email="b@example.com")
    PaymentOrderFactory(payment_event=event, amount=1234, state=PaymentOrderState.SUCCEEDED, psp_reference="pi_1")
    PaymentOrderFactory(payment_event=event, amount=99, state=PaymentOrderState.REQUIRES_ACTION,
                        next_action_url="https://psp.example/3ds/1")
    return event


def _same(ours, drfs) -> bool:
    """The same members in the same order: the same response, byte for byte."""
    return json.dumps(ours) == json.dumps(drfs)


def test_renders_what_drf_renders(event):
    rendered = PaymentEventOutput(event).data
    assert _same(rendered, _generic(PaymentEventOutput)(event).data)
    assert [o["next_action"] for o in rendered["orders"]] == [
        None, {"type": "redirect_to_url", "redirect_to_url": {"url": "https://psp.example/3ds/1"}}]
    for order in event.orders.all():
        for output in (PaymentOrderOutput, PaymentOrderDetailOutput):
            assert _same(output(order).data, _generic(output)(order).data)
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


class _Odd(OutputSerializer):
    """Every way a field may read its attribute."""

    plain = serializers.CharField()
    nested = serializers.CharField(source="inner.name")
    method = serializers.CharField(source="shout")
    missing_default = serializers.CharField(source="nowhere", default="dflt")
    missing_null = serializers.CharField(source="nowhere", allow_null=True)
    missing_skipped = serializers.CharField(source="nowhere", required=False)
    gone = serializers.CharField(source="does_not_exist", allow_null=True)
    keyed = serializers.CharField(source="key_error", default="k")
    none = serializers.IntegerField()
    when = serializers.DateTimeField()
    star = serializers.SerializerMethodField()
    whole = ObjectTypeField("odd")

    def get_star(self, obj) -> str:
        return type(obj).__name__


class _Instance:
    plain, none, when = "p", None, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    inner = SimpleNamespace(name="inner")

    def shout(self) -> str:
        return "SHOUT"

    @property
    def does_not_exist(self):
        raise ObjectDoesNotExist

    @property
    def key_error(self):
        raise KeyError("k")


def test_every_way_of_reading_an_attribute_renders_as_drf_does():
    mapping = {"plain": "m", "inner": {"name": "n"}, "shout": "s", "none": None, "when": None,
               "does_not_exist": None, "key_error": None}
    for instance in (_Instance(), mapping):
        assert _same(_Odd(instance).data, _generic(_Odd)(instance).data)
    assert _Odd(_Instance()).data["method"] == "SHOUT" and "missing_skipped" not in _Odd(_Instance()).data
    for render in (_Odd, _generic(_Odd)):  # a required field without its attribute: DRF's own error
        with pytest.raises(AttributeError, match="Got AttributeError when attempting to get a value for field"):
            render(SimpleNamespace()).data  # noqa: B018
