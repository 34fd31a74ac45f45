"""The chaos run made deterministic (issue #16): one line of ``chaos_schedule.SCHEDULE`` per test, each
fault forced at a fixed point and each worker killed at a known statement, so that every recovery path
(retry, janitor, sweeper, webhook first, task first, redelivery after a kill) runs on every run. The
random long run is ``bench/chaos.py`` (``test_chaos.py`` runs a short one).

Each scenario ends with ``assert_settled_once``: the order succeeded, the PSP (asked through the
sandbox's own record) captured it exactly once, one ledger posting, wallet = ledger = what the seller
is owed, ``audit_money`` clean. The janitor and the sweeper are called directly (Celery beat would
make the test wait for its interval); the clock they read is moved on by making an order due.
"""
import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from ledger import selectors as ledger_selectors
from payments.models import PaymentOrder, WebhookEvent
from payments.services import (
    capture_posting_key,
    payment_order_resolve,
    payment_orders_redrive_stalled,
    payment_orders_resolve_unknown,
)
from payments.tests.chaos_schedule import (
    SCHEDULE,
    RowLock,
    Worker,
    assert_settled_once,
    broker_unreachable,
    new_queue,
    psp_charges,
    queue_delete,
    redelivering_worker,
    sandbox_configure,
    sandbox_set,
    seller_share,
    send_to,
    transitions,
    wait_until,
    wait_worker_idle,
    worker_kill_at,
)
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_psp_faults import one_order, wait_state
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TASK = "task:payment_order_execute"
CREATED = ("", "not_started", "api_client")
SETTLED = ("succeeded", "failed", "dead_letter")


@pytest.fixture
def own_queue(celery_worker):
    """A queue for workers of this test's own (the session's worker keeps the default queue, where
    the sweeper and the janitor send their work)."""
    queue = new_queue()
    yield queue
    queue_delete(queue)


def make_due(order: PaymentOrder) -> None:
    """The clock moves on past the order's next action (the janitor's check, the sweeper's lease)."""
    PaymentOrder.objects.filter(pk=order.pk).update(next_action_at=timezone.now())


def assert_nothing_booked(order: PaymentOrder) -> None:
    assert ledger_selectors.postings_count_by_key(keys=[capture_posting_key(order.id)]) == {}
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency=order.currency) == 0


def test_retry_transient_500s_then_success(api, sandbox):
    fault = SCHEDULE["retry_transient_500"]
    sandbox_configure(sandbox, fault)
    order = wait_state(one_order(api, payment_method=fault.payment_method, amount=fault.amount), *SETTLED)

    assert order.attempts == 3  # two 500s the PSP told us to retry, then its success
    retried = ("executing", "executing", TASK)  # each retried 5xx is kept on the timeline (its PSP call)
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), retried, retried,
                                  ("executing", "succeeded", TASK)]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected
    assert [c["idempotency_key"] for c in psp_charges(sandbox, order.id)] == [order.id]  # one key throughout


def test_janitor_finds_the_charge_made_before_the_connection_dropped(api, sandbox):
    fault = SCHEDULE["janitor_finds_the_charge"]
    sandbox_configure(sandbox, fault)
    order = wait_state(one_order(api, payment_method=fault.payment_method, amount=fault.amount),
                       "unknown", *SETTLED)
    assert (order.state, order.attempts) == ("unknown", 1)  # no answer is not a failure
    assert_nothing_booked(order)
    [charge] = psp_charges(sandbox, order.id)
    assert charge["status"] == "succeeded"  # ...but the PSP did charge

    wait_until(charge["created_at"] + fault.sandbox["search_lag_s"] + 0.2)  # its search shows the charge now
    make_due(order)
    assert payment_orders_resolve_unknown() == 1
    order.refresh_from_db()
    assert order.attempts == 1  # applied what the PSP said: no second call
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "unknown", TASK),
                                  ("unknown", "succeeded", "janitor")]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected


def test_janitor_resends_under_the_same_key_while_the_search_lags(api, sandbox):
    fault = SCHEDULE["janitor_resends_same_key"]
    sandbox_configure(sandbox, fault)
    order = wait_state(one_order(api, payment_method=fault.payment_method, amount=fault.amount),
                       "unknown", *SETTLED)
    assert (order.state, order.attempts) == ("unknown", 1)
    assert [c["status"] for c in psp_charges(sandbox, order.id)] == ["succeeded"]

    make_due(order)  # asked within the search's lag: it shows nothing yet
    assert payment_orders_resolve_unknown() == 1
    order = wait_state(order, *SETTLED)
    assert (order.attempts, order.psp_key_generation) == (2, 0)  # sent again, under the same key
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "unknown", TASK),
                                  ("unknown", "executing", "janitor"), ("executing", "succeeded", TASK)]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected  # the second call was answered from the key's saved response


def test_janitor_sends_a_new_key_once_a_saved_500_is_past_the_search_lag(api, sandbox, settings):
    fault = SCHEDULE["janitor_new_key_after_saved_500"]
    sandbox_configure(sandbox, fault)
    order = wait_state(one_order(api, payment_method=fault.payment_method, amount=fault.amount),
                       "unknown", *SETTLED)
    assert (order.state, order.attempts, order.psp_key_generation) == ("unknown", 1, 0)
    assert order.psp_key_spent_at is not None
    assert psp_charges(sandbox, order.id) == []  # the 500 is saved against the key; nothing was charged
    sandbox_set(sandbox, error_rate=0.0)  # the PSP is well again

    # Asked at once, an empty search proves nothing yet: the janitor keeps the order and its key.
    assert payment_order_resolve(payment_order_id=order.id) == "unknown"
    order.refresh_from_db()
    assert (order.state, order.psp_key_generation) == ("unknown", 0)
    trusted_from = order.psp_key_spent_at.timestamp() + settings.PSP_SEARCH_CONSISTENCY_SECONDS
    assert order.next_action_at.timestamp() == pytest.approx(trusted_from, abs=1e-3)
    assert payment_orders_resolve_unknown() == 0  # and its round leaves it alone until then

    wait_until(trusted_from)
    assert payment_orders_resolve_unknown() == 1
    order = wait_state(order, *SETTLED)
    assert (order.attempts, order.psp_key_generation) == (2, 1)
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "unknown", TASK),
                                  ("unknown", "executing", "janitor"), ("executing", "succeeded", TASK)]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected
    assert [c["idempotency_key"] for c in psp_charges(sandbox, order.id)] == [f"{order.id}.r1"]


def test_sweeper_enqueues_an_order_whose_task_was_never_sent(api, sandbox, settings):
    fault = SCHEDULE["sweeper_never_enqueued"]
    sandbox_configure(sandbox, fault)
    settings.PAYMENT_STALL_SECONDS = 2  # the lease a checkout gives its orders before the sweeper may take them
    with broker_unreachable():
        order = one_order(api, payment_method=fault.payment_method, amount=fault.amount)  # still a 201
    order.refresh_from_db()
    assert (order.state, order.attempts) == ("not_started", 0)

    assert payment_orders_redrive_stalled() == 0  # within its lease: left alone
    order.refresh_from_db()
    assert order.state == "not_started"
    wait_until(order.next_action_at.timestamp())
    assert payment_orders_redrive_stalled() == 1
    order = wait_state(order, *SETTLED)
    assert order.attempts == 1
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "succeeded", TASK)]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected


def test_worker_killed_after_the_psp_answered_is_swept_and_charges_once(celery_worker, sandbox, own_queue):
    fault = SCHEDULE["sweeper_after_worker_died"]
    sandbox_configure(sandbox, fault)
    order = PaymentOrderFactory(payment_event__payment_method=fault.payment_method, amount=fault.amount)

    with Worker(own_queue, sandbox_url=sandbox) as worker:
        killed_at = worker_kill_at(fault.kill_at, worker=worker, order=order, sandbox_url=sandbox)

    order.refresh_from_db()
    assert (order.state, order.attempts) == ("executing", 1)
    assert_nothing_booked(order)
    assert [c["status"] for c in psp_charges(sandbox, order.id)] == ["succeeded"]  # charged; our books don't know

    assert payment_orders_redrive_stalled() == 0  # within its lease a live worker could still be on it
    make_due(order)
    assert payment_orders_redrive_stalled() == 1  # the session's worker takes it
    order = wait_state(order, *SETTLED)
    assert order.attempts == 2
    assert transitions(order) == [("not_started", "executing", TASK), ("executing", "succeeded", TASK)]

    # The dead worker's message was never acknowledged: a new worker is handed it again, late. The
    # order's row is held meanwhile, so the redelivered task is seen asking for it; then it finds the
    # order decided and calls no one.
    with RowLock("SELECT id FROM payments_paymentorder WHERE id = %s AND state = 'succeeded' FOR UPDATE",
                 [order.id]) as lock, \
            redelivering_worker(own_queue, sandbox_url=sandbox, killed_at=killed_at) as late:
        waiter = wait_for(lock.waiter, timeout=30, message="the broker to redeliver the dead worker's message")
        assert 'FROM "payments_paymentorder" WHERE "id"' in waiter.query, waiter.query  # the claim's locking read
        lock.release()
        wait_worker_idle(own_queue)
        assert late.tasks_received() == 1
    order.refresh_from_db()
    assert order.attempts == 2
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected


def test_webhook_first_decides_and_the_late_answer_changes_nothing(api, sandbox, live_server, celery_worker):
    fault = SCHEDULE["webhook_first"]
    sandbox_configure(sandbox, fault, webhook_url=f"{live_server.url}/webhooks/psp")
    order = wait_state(one_order(api, payment_method=fault.payment_method, amount=fault.amount), *SETTLED)
    wait_worker_idle(celery_worker)  # the task has had the PSP's (late) answer and is done with it

    order.refresh_from_db()
    assert order.attempts == 1
    # Decided by the webhook while the task still waited; the task's answer found it decided.
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "succeeded", "webhook")]
    event = WebhookEvent.objects.get(type="payment_intent.succeeded", object_id=order.psp_reference)
    assert event.status == WebhookEvent.Status.PROCESSED
    assert not WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).exists()
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected


def test_task_first_decides_and_the_duplicated_webhooks_change_nothing(api, sandbox, live_server):
    fault = SCHEDULE["task_first"]
    sandbox_configure(sandbox, fault, webhook_url=f"{live_server.url}/webhooks/psp")
    order = wait_state(one_order(api, payment_method=fault.payment_method, amount=fault.amount), *SETTLED)
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "succeeded", TASK)]

    event = wait_for(lambda: WebhookEvent.objects.filter(
        type="payment_intent.succeeded", object_id=order.psp_reference, deliveries=2).first(),
        message="the success webhook, delivered twice")
    assert event.status == WebhookEvent.Status.PROCESSED  # applied: a decided order does not move
    assert event.received_at > order.completed_at  # the task had recorded it first
    assert not WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).exists()
    order.refresh_from_db()
    assert order.attempts == 1
    assert transitions(order) == [CREATED, ("not_started", "executing", TASK), ("executing", "succeeded", TASK)]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(fault.amount))
    assert money["faults"] == fault.injected


def test_worker_killed_before_its_commit_is_redelivered_and_charges_once(celery_worker, sandbox, own_queue):
    fault = SCHEDULE["redelivered_after_kill_before_commit"]
    sandbox_configure(sandbox, fault)
    earlier = PaymentOrderFactory(amount=500)  # the seller's earlier sale: its wallet row exists
    order = PaymentOrderFactory(seller=earlier.seller, payment_event__client=earlier.seller.client,
                                payment_event__payment_method=fault.payment_method, amount=fault.amount)

    with Worker(own_queue, sandbox_url=sandbox) as worker:
        send_to(own_queue, earlier)
        wait_state(earlier, *SETTLED)
        killed_at = worker_kill_at(fault.kill_at, worker=worker, order=order, sandbox_url=sandbox)

    order.refresh_from_db()
    assert (order.state, order.attempts) == ("executing", 1)  # everything step (c) wrote died with it
    assert ledger_selectors.postings_count_by_key(keys=[capture_posting_key(order.id)]) == {}
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == seller_share(500)
    call_command("audit_money")  # sound in the window too: the books just don't know of the charge yet

    # acks_late: the message the dead worker held is handed to the next worker.
    with redelivering_worker(own_queue, sandbox_url=sandbox, killed_at=killed_at) as redelivering:
        order = wait_state(order, *SETTLED)
        assert redelivering.tasks_received() == 1  # that message, and only it
        wait_worker_idle(own_queue)
    assert order.attempts == 2  # the PSP replayed its answer for the key: no second charge
    assert transitions(order) == [("not_started", "executing", TASK), ("executing", "succeeded", TASK)]
    money = assert_settled_once(sandbox, order, seller_total=seller_share(500, fault.amount))
    assert money["faults"] == fault.injected
    assert len(psp_charges(sandbox, earlier.id)) == 1
