"""``lock_order`` and ``order_claim`` read the order and its event in hand-written SQL (the ORM's
compile was a third of an order's CPU): they must load exactly what the ORM loads, lock the order
but not the event, and claim as the state machine's ``start`` does."""
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition
from payments.services.order_rows import lock_order, order_claim
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _other_session() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                           password=settings["PASSWORD"] or None, dbname=settings["NAME"], autocommit=True)


def test_lock_order_loads_every_field_as_the_orm_does():
    now = timezone.now()
    event = PaymentEventFactory(buyer_email="b@example.com", psp_customer="cus_1", failure_reason="why",
                                orders_succeeded=1, completed_at=now)
    order = PaymentOrderFactory(payment_event=event, state="executing", psp_reference="pi_1", failure_code="c",
                                failure_message="m", attempts=3, psp_key_generation=2, psp_key_spent_at=now,
                                amount_refunded=5, next_action_at=now + timedelta(seconds=7), completed_at=now)
    with transaction.atomic():
        locked = lock_order(order.id)
    loaded = PaymentOrder.objects.select_related("payment_event").get(pk=order.id)
    for model, ours, orms in ((PaymentOrder, locked, loaded), (PaymentEvent, locked.payment_event,
                                                                loaded.payment_event)):
        for field in model._meta.concrete_fields:
            mine, theirs = getattr(ours, field.attname), getattr(orms, field.attname)
            assert (mine, type(mine)) == (theirs, type(theirs)), f"{model.__name__}.{field.attname}"
    assert locked._state.adding is False and locked._state.db == "default"
    assert locked.payment_event_id == event.id and locked.payment_event.pk == event.id


def test_lock_order_locks_the_order_not_its_event():
    order = PaymentOrderFactory()
    with _other_session() as other, transaction.atomic():
        lock_order(order.id)
        other.execute("SELECT 1 FROM payments_paymentevent WHERE id = %s FOR UPDATE NOWAIT",
                      [order.payment_event_id])  # free
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT 1 FROM payments_paymentorder WHERE id = %s FOR UPDATE NOWAIT", [order.id])


def test_lock_order_of_a_missing_order_raises_does_not_exist():
    with pytest.raises(PaymentOrder.DoesNotExist), transaction.atomic():
        lock_order("ord_missing")


def test_the_claim_starts_an_order_once_and_counts_every_attempt():
    order = PaymentOrderFactory()
    later = timezone.now() + timedelta(seconds=40)
    first = order_claim(order.id, actor="task:t", reason="sent to the PSP", next_action_at=later)
    again = order_claim(order.id, actor="task:t", reason="sent to the PSP", next_action_at=later)
    assert (first.state, first.attempts, again.state, again.attempts) == ("executing", 1, "executing", 2)
    assert again.payment_event.pk == order.payment_event_id and again.next_action_at == later
    stored = PaymentOrder.objects.get(pk=order.id)
    assert (stored.state, stored.attempts) == ("executing", 2)
    audit = list(PaymentOrderTransition.objects.filter(payment_order=order).values_list("from_state", "to_state"))
    assert audit == [("not_started", "executing")]  # a retry is an attempt, not a transition


def test_the_claim_leaves_a_decided_order_alone():
    order = PaymentOrderFactory(state="succeeded", attempts=1)
    assert order_claim(order.id, actor="task:t", reason="x", next_action_at=timezone.now()) is None
    stored = PaymentOrder.objects.get(pk=order.id)
    assert (stored.state, stored.attempts, stored.next_action_at) == ("succeeded", 1, order.next_action_at)
    assert not PaymentOrderTransition.objects.filter(payment_order=order).exists()


def test_a_claim_given_the_event_reads_the_order_alone_and_keeps_that_event(django_assert_num_queries):
    """The event's task hands the event it read to each claim: the claim loads the order as the ORM does, in
    its one statement, and the order carries that very event instance; an event not the order's is refused."""
    now = timezone.now()
    order = PaymentOrderFactory(psp_reference="pi_1", failure_code="c", psp_key_spent_at=now, amount_refunded=5)
    event = PaymentEvent.objects.get(pk=order.payment_event_id)
    later = now + timedelta(seconds=40)
    with django_assert_num_queries(1) as captured:
        claimed = order_claim(order.id, actor="task:t", reason="sent", next_action_at=later, event=event)
    assert "payments_paymentevent" not in captured.captured_queries[0]["sql"]
    assert claimed.payment_event is event and (claimed.state, claimed.attempts) == ("executing", 1)
    loaded = PaymentOrder.objects.get(pk=order.id)
    for field in PaymentOrder._meta.concrete_fields:
        mine, theirs = getattr(claimed, field.attname), getattr(loaded, field.attname)
        assert (mine, type(mine)) == (theirs, type(theirs)), field.attname
    with pytest.raises(ValueError, match="is not order"):
        order_claim(order.id, actor="task:t", reason="sent", next_action_at=later, event=PaymentEventFactory())
