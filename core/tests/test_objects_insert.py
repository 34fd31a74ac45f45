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


def test_values_written_as_they_are_are_what_djangos_preparation_gives():
    """``_prepared`` skips Django's preparation only where it would give the value back unchanged."""
    from datetime import UTC, datetime

    from django.db import connection, models

    from core.db import _columns, _prepared, _written_as_is
    from core.models import IdempotencyRecord

    client = ApiClientFactory.build(id="cli_1")
    event = PaymentEvent(id="pe_1", client=client, buyer_reference="b", buyer_email="b@example.com",
                         payment_method="pm_card_visa", idempotency_key="k")
    order = PaymentOrder(id="ord_1", payment_event=event, seller_id="sel_1", amount=500, currency="usd",
                         next_action_at=datetime(2026, 1, 1, tzinfo=UTC))
    audit = PaymentOrderTransition(payment_order=order, from_state="", to_state="not_started", actor="a")
    record = IdempotencyRecord(client=client, key="k", request_method="POST", request_path="/", status="completed",
                               request_fingerprint="f", response_body={"a": 1}, locked_at=order.next_action_at)
    def plain(value):  # psycopg's Jsonb wrapper compares by identity
        return (type(value), value.obj) if hasattr(value, "obj") else value

    for obj in (event, order, audit, record):
        for field, as_is, read_plainly in _columns(type(obj))[1]:
            ours = _prepared(field, as_is, read_plainly, obj)  # first: pre_save sets auto_now_add on the instance
            if read_plainly:  # read without pre_save: which gives the attribute as it is
                assert field.pre_save(obj, add=True) is getattr(obj, field.attname)
            django_value = field.get_db_prep_save(getattr(obj, field.attname), connection)
            assert plain(ours) == plain(django_value), (type(obj).__name__, field.name)
    assert _written_as_is(IdempotencyRecord._meta.get_field("response_body")) == ()  # JSON: adapted, always
    assert _written_as_is(PaymentOrder._meta.get_field("seller")) == (str,)  # a foreign key: as its target

    class Upper(models.CharField):
        def get_prep_value(self, value):
            return value.upper()

    assert _written_as_is(Upper(max_length=3)) == ()  # a field that prepares its own way keeps it
    naive = PaymentOrder(next_action_at=datetime(2026, 1, 1))
    field = PaymentOrder._meta.get_field("next_action_at")
    with pytest.warns(RuntimeWarning, match="naive datetime"):  # Django's preparation makes it aware, and says so
        assert _prepared(field, (datetime,), False, naive).tzinfo is not None
    assert not _columns(PaymentOrder)[1][[f.name for f, _, _ in _columns(PaymentOrder)[1]].index("created_at")][2]


def test_values_written_as_literals_come_back_exactly():
    """Quotes, percent signs, backslashes, non-ASCII text, JSON, NULLs and times: stored as given."""
    from datetime import UTC, datetime

    from core.models import IdempotencyRecord

    client = ApiClientFactory()
    awkward = "it's 100% \\ 'x' %s %(a)s $1 é 😀 \" ;--"
    event = PaymentEvent(client=client, buyer_reference=awkward, buyer_email="", payment_method="pm_card_visa",
                         idempotency_key=awkward)
    order = PaymentOrder(payment_event=event, seller=SellerFactory(client=client), amount=2**62, currency="usd",
                         next_action_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    record = IdempotencyRecord(client=client, key=awkward, request_method="POST", request_path="/%", status="completed",
                               request_fingerprint="f", response_body={"a": [1, None, awkward], "b": {"c": 1.5}},
                               locked_at=order.next_action_at, completed_at=None)
    objects_insert([event], [order])
    objects_insert([record])
    stored = PaymentEvent.objects.get(pk=event.pk)
    assert (stored.buyer_reference, stored.idempotency_key) == (awkward, awkward)
    stored_order = PaymentOrder.objects.get(pk=order.pk)
    assert (stored_order.amount, stored_order.next_action_at) == (2**62, order.next_action_at)
    stored_record = IdempotencyRecord.objects.get(client=client, key=awkward)
    assert (stored_record.response_body, stored_record.completed_at, stored_record.request_path) == (
        {"a": [1, None, awkward], "b": {"c": 1.5}}, None, "/%")
