"""One task per checkout of several orders: the buyer's card readied once (one PSP call for a new buyer), then
the orders executed in the event's task, each as its own task would (its key, its claim, its transaction), and
handed to a task of its own when its attempt ends retryable."""
import pytest

from core.tests import loopback
from payments import services
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PSPCustomer
from payments.psp import get_psp
from payments.psp.base import CustomerRequest
from payments.services import customers
from payments.tasks import payment_event_execute_task, payment_event_orders_execute
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean, sandbox_money
from payments.tests.test_psp_faults import wait_state
from payments.tests.test_stripe_as_it_is import tokenise

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def psp_calls(sandbox) -> dict[str, list[str]]:
    """The sandbox's events by the idempotency key of the request that made them."""
    calls: dict[str, list[str]] = {}
    for stored in loopback.get(f"{sandbox}/_sandbox/events", timeout=5).json()["events"]:
        event = stored["event"]
        calls.setdefault(event["request"]["idempotency_key"], []).append(event["type"])
    return calls


def charged_customer(sandbox, order: PaymentOrder) -> str:
    return loopback.get(f"{sandbox}/v1/payment_intents/{order.psp_reference}", auth=("sk_test_sandbox", ""),
                        timeout=5).json()["customer"]


def event_of(n: int, **fields) -> tuple[PaymentEvent, list[PaymentOrder]]:
    event = PaymentEventFactory(psp_payment_method="", **fields)
    return event, [PaymentOrderFactory(payment_event=event, amount=1000 + i) for i in range(n)]


def run(event: PaymentEvent) -> int:
    """The event's task, in this process."""
    return payment_event_execute_task.apply(kwargs={"payment_event_id": event.id}).get()


def settled(orders: list[PaymentOrder]) -> list[PaymentOrder]:
    return list(PaymentOrder.objects.filter(pk__in=[o.pk for o in orders]).order_by("pk"))


def test_a_new_buyers_card_is_attached_by_the_call_that_creates_their_customer(sandbox):
    token = tokenise(sandbox)
    event, orders = event_of(2, payment_method=token, buyer_reference="new")
    assert run(event) == 2
    event = PaymentEvent.objects.get(pk=event.pk)
    stored = PSPCustomer.objects.get()
    assert (event.psp_customer, event.psp_payment_method) == (stored.psp_customer_id, token)
    calls = psp_calls(sandbox)
    assert calls[f"customer:{event.id}"] == ["customer.created", "payment_method.attached"]
    assert not [key for key in calls if key.startswith("attach:")]
    for order in settled(orders):
        assert (order.state, order.attempts) == (PaymentOrderState.SUCCEEDED, 1)
        assert charged_customer(sandbox, order) == stored.psp_customer_id
    assert_audit_clean()


def test_each_event_charges_the_customer_its_own_token_went_to_and_a_returning_buyer_attaches(sandbox):
    first, first_orders = event_of(2, payment_method=tokenise(sandbox), buyer_reference="twice")
    # Two checkouts of the same new buyer at once: each read no customer stored for the buyer, so each
    # creates one with its own token attached.
    second, second_orders = event_of(2, payment_method=tokenise(sandbox), buyer_reference="twice",
                                     client=first.client)
    customers._ready_and_keep(first, "")
    customers._ready_and_keep(second, "")
    assert run(first) == 2 and run(second) == 2
    first, second = PaymentEvent.objects.get(pk=first.pk), PaymentEvent.objects.get(pk=second.pk)
    stored = PSPCustomer.objects.get()  # one per buyer: whichever was stored first
    assert stored.psp_customer_id == first.psp_customer != second.psp_customer
    for event, orders in ((first, first_orders), (second, second_orders)):
        for order in settled(orders):
            assert order.state == PaymentOrderState.SUCCEEDED
            assert charged_customer(sandbox, order) == event.psp_customer
    # The buyer's next checkout attaches its card to their stored customer.
    third, third_orders = event_of(2, payment_method="pm_card_visa", buyer_reference="twice", client=first.client)
    assert run(third) == 2
    calls = psp_calls(sandbox)
    assert calls[f"attach:{third.id}"] == ["payment_method.attached"] and f"customer:{third.id}" not in calls
    assert PaymentEvent.objects.get(pk=third.pk).psp_customer == stored.psp_customer_id
    assert {o.state for o in settled(third_orders)} == {PaymentOrderState.SUCCEEDED}
    assert sandbox_money(sandbox)["double_charges"] == []


def test_two_runs_of_an_event_that_took_both_ways_agree_on_where_the_token_went(sandbox):
    """One run created the buyer's customer with the token (not yet kept on the event); another customer was
    stored for the buyer meanwhile, so an order of the event tries to attach the token there: refused (it is
    attached already), it replays the first run's call under the event's key and charges that customer."""
    token = tokenise(sandbox)
    event, [order] = event_of(1, payment_method=token, buyer_reference="raced")
    _, created_with_token, new = customers._create_with_method(event)  # stored with the method: not yet
    assert new and not PSPCustomer.objects.exists()
    other = get_psp().create_customer(CustomerRequest(idempotency_key="another", buyer_reference="raced"))
    # as if another checkout of the buyer's had stored it first
    PSPCustomer.objects.create(client=event.client, buyer_reference="raced", psp_customer_id=other)
    assert services.payment_order_execute(payment_order_id=order.id) == PaymentOrderState.SUCCEEDED
    assert PaymentEvent.objects.get(pk=event.pk).psp_customer == created_with_token
    assert charged_customer(sandbox, settled([order])[0]) == created_with_token


def test_an_order_whose_attempt_ends_retryable_goes_to_its_own_task_with_its_backoff(celery_worker, sandbox):
    """Each order's PaymentIntent fails twice with a retryable 500, as a one-order checkout's does in its own
    task (test_psp_faults): the same attempts and retry rows, the retries in the order's own task."""
    event, orders = event_of(2, payment_method="pm_sandbox_flaky")
    assert run(event) == 2
    for order in orders:
        order = wait_state(order, "succeeded", "failed", "dead_letter")
        assert (order.state, order.attempts) == (PaymentOrderState.SUCCEEDED, 3)
        reasons = list(order.transitions.values_list("reason", flat=True))
        assert sum(r.startswith("PSP error, retrying in") for r in reasons) == 2
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 2


def test_an_order_out_of_attempts_goes_to_the_dead_letter_from_the_event_task(settings, sandbox):
    settings.PAYMENT_EXECUTE_MAX_ATTEMPTS = 1
    event, orders = event_of(2, payment_method="pm_sandbox_flaky")
    assert run(event) == 2
    for order in settled(orders):
        assert (order.state, order.failure_code, order.attempts) == (PaymentOrderState.DEAD_LETTER,
                                                                     "retries_exhausted", 1)


def test_a_redelivered_event_task_executes_again_only_what_order_claim_lets_it(sandbox):
    event, orders = event_of(3)
    decided, in_flight, waiting = orders
    services.payment_order_execute(payment_order_id=decided.id)  # the killed run: one decided, one mid-call
    PaymentOrder.objects.filter(pk=in_flight.pk).update(state=PaymentOrderState.EXECUTING, attempts=1)
    assert services.payment_event_prepare(payment_event_id=event.id)[1] == [waiting.id]
    again = services.payment_event_prepare(payment_event_id=event.id, redelivered=True)[1]
    assert sorted(again) == sorted([in_flight.id, waiting.id])
    assert payment_event_orders_execute(again) == 2
    attempts = {o.pk: (o.state, o.attempts) for o in settled(orders)}
    assert attempts == {decided.pk: ("succeeded", 1), in_flight.pk: ("succeeded", 2), waiting.pk: ("succeeded", 1)}
    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["count"] == 3 and money["double_charges"] == []


def test_past_its_time_budget_the_event_task_hands_its_orders_to_their_own_tasks(celery_worker, sandbox):
    event, orders = event_of(2)
    ids = services.payment_event_prepare(payment_event_id=event.id)[1]
    assert payment_event_orders_execute(ids, budget=-1) == 2
    for order in orders:
        assert wait_state(order, "succeeded", "failed", "dead_letter").state == PaymentOrderState.SUCCEEDED


@pytest.mark.parametrize("new_customer", [False, True])
def test_the_first_run_to_keep_the_events_method_wins(monkeypatch, new_customer):
    """Two runs of one event readied its method: the second to store it charges the first's answer. A new
    customer is stored in the same statement: the buyer's first stays theirs."""
    event, _orders = event_of(2)
    stale = PaymentEvent.objects.get(pk=event.pk)
    monkeypatch.setattr(customers, "_ready", lambda event, known: ("pm_first", "cus_first", new_customer))
    assert customers._ready_and_keep(event, "") == ("pm_first", "cus_first")
    monkeypatch.setattr(customers, "_ready", lambda event, known: ("pm_second", "cus_second", new_customer))
    assert customers._ready_and_keep(stale, "") == ("pm_first", "cus_first")
    assert (stale.psp_payment_method, stale.psp_customer) == ("pm_first", "cus_first")
    stored = PaymentEvent.objects.get(pk=event.pk)
    assert (stored.psp_payment_method, stored.psp_customer) == ("pm_first", "cus_first")
    assert list(PSPCustomer.objects.values_list("psp_customer_id", flat=True)) == (["cus_first"] if new_customer
                                                                                   else [])
