"""A checkout's own outcome: the payment event's state, derived from its orders, decided once in the
transaction of the order that decides it; and CHECKOUT_ON_PARTIAL_FAILURE=refund_all."""
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_fsm import TransitionNotAllowed
from rest_framework.test import APIClient

from conftest import wait_for
from core.services import api_client_create
from core.tests import loopback
from payments.models import (
    PaymentEvent,
    PaymentEventState,
    PaymentEventTransition,
    PaymentOrderState,
    Refund,
    RefundState,
    RefundTransition,
)
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.customers import payment_event_payment_method
from payments.services.execution import payment_order_apply_result, payment_order_dead_letter, payment_order_execute
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory, SellerFactory
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db(transaction=True)


def succeeded(order):
    return PaymentResult(status=PaymentStatus.SUCCEEDED, psp_reference=f"pi_{order.id}", amount=order.amount,
                         currency=order.currency)


def failed(order):
    return PaymentResult(status=PaymentStatus.FAILED, psp_reference=f"pi_{order.id}", amount=order.amount,
                         currency=order.currency, failure_code="card_declined", failure_message="declined")


def apply(order, result, actor="test"):
    return payment_order_apply_result(payment_order_id=order.id, result=result, actor=actor)


def event_with(n, *, client=None, state=PaymentOrderState.EXECUTING, **event_fields):
    event = PaymentEventFactory(**({"client": client} if client else {}), **event_fields)
    orders = [PaymentOrderFactory(payment_event=event, state=state, amount=1000 * (i + 1)) for i in range(n)]
    return event, orders


def test_one_order_succeeds_the_event_succeeds():
    event, [order] = event_with(1)
    assert event.state == PaymentEventState.PROCESSING and event.completed_at is None
    apply(order, succeeded(order))
    event.refresh_from_db()
    assert event.state == PaymentEventState.SUCCEEDED and event.completed_at is not None
    assert event.failure_reason == ""
    assert list(event.transitions.values_list("from_state", "to_state", "actor")) == [
        ("processing", "succeeded", "test")]


def test_one_order_fails_the_event_fails_with_a_reason():
    event, [order] = event_with(1)
    apply(order, failed(order))
    event.refresh_from_db()
    assert (event.state, event.failure_reason) == (PaymentEventState.FAILED, "the order failed")
    assert event.completed_at is not None


def test_every_order_failed_is_failed():
    event, orders = event_with(3)
    for order in orders:
        apply(order, failed(order))
    event.refresh_from_db()
    assert (event.state, event.failure_reason) == (PaymentEventState.FAILED, "all 3 orders failed")
    assert (event.orders_succeeded, event.orders_failed) == (0, 3)


def test_processing_until_the_last_order_then_partially_succeeded_and_decided_once():
    event, (first, second, third) = event_with(3)
    apply(first, succeeded(first))
    apply(second, failed(second))
    event.refresh_from_db()
    assert event.state == PaymentEventState.PROCESSING and event.completed_at is None
    apply(third, succeeded(third), actor="webhook:evt_1")
    for order in (first, second, third):  # the PSP's answers again: nothing changes
        apply(order, succeeded(order))
    event.refresh_from_db()
    assert event.state == PaymentEventState.PARTIALLY_SUCCEEDED and event.failure_reason == ""
    assert (event.orders_succeeded, event.orders_failed) == (2, 1)
    assert list(event.transitions.values_list("to_state", "actor", "reason")) == [
        ("partially_succeeded", "webhook:evt_1", "2 of 3 orders succeeded, 1 failed")]
    assert not Refund.objects.exists()  # keep: the default


def test_a_dead_lettered_order_leaves_its_event_processing_until_a_replay_decides_it():
    event, (first, second) = event_with(2)
    apply(first, succeeded(first))
    payment_order_dead_letter(payment_order_id=second.id, code="retries_exhausted", message="gave up", actor="task")
    event.refresh_from_db()
    assert event.state == PaymentEventState.PROCESSING
    apply(second, succeeded(second), actor="operator:alice")  # the replay's answer
    event.refresh_from_db()
    assert event.state == PaymentEventState.SUCCEEDED


def test_the_event_state_is_protected_and_moves_only_by_transitions():
    event, _ = event_with(1)
    with pytest.raises(AttributeError):
        event.state = PaymentEventState.SUCCEEDED
    event.succeed()
    with pytest.raises(TransitionNotAllowed):
        event.partially_succeed()


def test_deciding_the_event_costs_one_statement_per_order_and_one_more_for_the_last():
    event, (first, second) = event_with(2)
    warm = PaymentOrderFactory(state=PaymentOrderState.EXECUTING)
    apply(warm, succeeded(warm))  # accounts exist (its own PaymentIntent: no two orders share one, 0018)
    with CaptureQueriesContext(connection) as not_deciding:
        apply(first, succeeded(first))
    with CaptureQueriesContext(connection) as deciding:
        apply(second, succeeded(second))
    def on_the_event(captured):
        writes = ("WITH ev AS (UPDATE payments_paymentevent",  # the counters (and the merchant events' outbox)
                  'WITH moved AS (UPDATE "payments_paymentevent"')  # the event's transition
        return [q["sql"] for q in captured.captured_queries if q["sql"].startswith(writes)]

    assert len(on_the_event(not_deciding)) == 1
    assert len(on_the_event(deciding)) == 2
    assert len(deciding.captured_queries) == len(not_deciding.captured_queries) + 1


def _decide_concurrently(pairs):
    """Each (order, result) applied in its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(pairs))
    errors = []

    def run(order, result):
        try:
            barrier.wait()
            apply(order, result)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


def test_two_siblings_deciding_concurrently_decide_the_event_once():
    for _ in range(15):
        event, (first, second) = event_with(2)
        _decide_concurrently([(first, succeeded(first)), (second, failed(second))])
        event.refresh_from_db()
        assert event.state == PaymentEventState.PARTIALLY_SUCCEEDED
        assert (event.orders_succeeded, event.orders_failed) == (1, 1)
        assert event.transitions.count() == 1


def test_the_api_and_the_schema_show_the_state():
    client, key = api_client_create(name="shop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    event, (first, second) = event_with(2, client=client)
    body = api.get(f"/api/v1/checkouts/{event.id}").json()
    assert (body["state"], body["completed_at"], body["failure_reason"]) == ("processing", None, "")
    apply(first, failed(first))
    apply(second, failed(second))
    body = api.get(f"/api/v1/checkouts/{event.id}").json()
    assert (body["state"], body["failure_reason"]) == ("failed", "all 2 orders failed")
    assert body["completed_at"] is not None
    listed = api.get("/api/v1/checkouts").json()["results"]
    assert [(e["id"], e["state"]) for e in listed] == [(event.id, "failed")]
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    properties = schema["components"]["schemas"]["PaymentEventOutput"]["properties"]
    assert {"state", "completed_at", "failure_reason"} <= set(properties)
    assert set(schema["components"]["schemas"]["StateEnum"]["enum"]) == {
        "processing", "succeeded", "partially_succeeded", "failed"}


def test_admin_lists_and_filters_events_by_state_and_the_dashboard_counts_partial_ones(admin_client):
    partial, (first, second) = event_with(2)
    apply(first, succeeded(first))
    apply(second, failed(second))
    done, [order] = event_with(1)
    apply(order, succeeded(order))
    page = admin_client.get("/admin/payments/paymentevent/?state__exact=partially_succeeded")
    assert page.status_code == 200
    assert partial.id in page.content.decode() and done.id not in page.content.decode()
    assert admin_client.get(f"/admin/payments/paymentevent/{partial.id}/change/").status_code == 200
    dashboard = admin_client.get("/admin/")
    assert dashboard.context["attention"]["partially_succeeded_checkouts"] == 1
    assert "Partially succeeded checkouts" in dashboard.content.decode()


def test_refund_all_refunds_only_the_succeeded_orders_once(settings, celery_worker, sandbox):
    """A 3-seller checkout paid with one card: one order is declined (forced before it is sent), the
    other two are charged by the real sandbox concurrently; whichever decides the event last refunds
    both through the normal refund path, which the real worker sends to the sandbox."""
    settings.CHECKOUT_ON_PARTIAL_FAILURE = "refund_all"
    client, _ = api_client_create(name="shop")
    event = PaymentEventFactory(client=client, payment_method="pm_card_visa", psp_payment_method="")
    sellers = [SellerFactory(client=client) for _ in range(3)]
    paid = [PaymentOrderFactory(payment_event=event, seller=sellers[i], amount=1000 * (i + 1)) for i in range(2)]
    declined = PaymentOrderFactory(payment_event=event, seller=sellers[2], amount=3000,
                                   state=PaymentOrderState.EXECUTING)
    apply(declined, failed(declined), actor="task:payment_order_execute")
    payment_event_payment_method(event=event)  # the card attached to the buyer once, as the event's task does

    barrier = threading.Barrier(2)

    def execute(order):
        try:
            barrier.wait()
            payment_order_execute(payment_order_id=order.id)
        finally:
            connection.close()

    threads = [threading.Thread(target=execute, args=(o,)) for o in paid]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    event.refresh_from_db()
    assert event.state == PaymentEventState.FAILED
    assert "1 of 3 orders failed" in event.failure_reason and "refund_all" in event.failure_reason
    assert event.transitions.count() == 1
    # The deciding answers again, sequentially and concurrently: still one refund per succeeded order.
    for order in paid:
        order.refresh_from_db()
        apply(order, PaymentResult(status=PaymentStatus.SUCCEEDED, psp_reference=order.psp_reference,
                                   amount=order.amount, currency=order.currency))
    _decide_concurrently([(declined, failed(declined)), (paid[0], failed(paid[0]))])

    refunds = wait_for(lambda: (list(Refund.objects.order_by("payment_order_id"))
                                if Refund.objects.filter(state=RefundState.SUCCEEDED).count() == 2 else None),
                       message="the refunds to succeed")
    assert len(refunds) == 2
    assert sorted((r.payment_order_id, r.amount) for r in refunds) == sorted((o.id, o.amount) for o in paid)
    assert set(RefundTransition.objects.filter(from_state="").values_list("actor", flat=True)) == {
        "system:refund_all"}
    for seller in sellers:
        assert wallet_selectors.wallet_balance(owner_id=seller.id, currency="usd") == 0
    money = loopback.get(f"{sandbox}/_sandbox/charges", timeout=10).json()
    succeeded_refunds = [r for r in money["refunds"] if r["status"] == "succeeded"]
    assert sorted(r["payment_order_id"] for r in succeeded_refunds) == sorted(o.id for o in paid)
    assert money["totals"]["usd"] == {"captured": 3000, "refunded": 3000, "count": 2}
    assert money["double_charges"] == []
    call_command("audit_money")  # raises CommandError on any violation
    assert PaymentEvent.objects.get(pk=event.pk).state == PaymentEventState.FAILED


def test_refund_all_leaves_all_succeeded_and_all_failed_events_alone(settings):
    settings.CHECKOUT_ON_PARTIAL_FAILURE = "refund_all"
    event, [order] = event_with(1)
    apply(order, succeeded(order))
    event.refresh_from_db()
    assert event.state == PaymentEventState.SUCCEEDED
    assert not Refund.objects.exists()
    assert PaymentEventTransition.objects.count() == 1
