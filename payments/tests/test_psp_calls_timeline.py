"""Each call the executor makes to the PSP is kept (status, error, latency, idempotency key) in the audit row
that records its answer, written in the same statement (no statement more on the settled path:
test_statement_counts), and shown as one row per call on the order's timeline (issue 15). Against the real
PostgreSQL, the PSP sandbox and, for retries, a real Celery worker."""
import pytest

from core.tests.helpers import operator_client
from payments import services
from payments.models import PaymentOrderState
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_psp_faults import one_order, wait_state

pytestmark = pytest.mark.django_db(transaction=True)


def _calls(order):
    return [t.detail["psp_call"] for t in order.transitions.order_by("created_at", "id") if t.detail]


def test_a_settled_orders_psp_call_is_kept_on_its_transition(sandbox):
    order = PaymentOrderFactory(amount=4999)
    assert services.payment_order_execute(payment_order_id=order.id) == "succeeded"
    order.refresh_from_db()
    [call] = _calls(order)
    assert call["attempt"] == 1 and call["status"] == "succeeded" and call["error"] == ""
    assert call["idempotency_key"] == order.psp_idempotency_key and call["psp_reference"] == order.psp_reference
    assert isinstance(call["latency_ms"], int) and 0 <= call["latency_ms"] < 30_000
    succeeded = order.transitions.get(to_state="succeeded")
    assert succeeded.detail == {"psp_call": call}
    assert order.transitions.get(to_state="executing").detail is None  # the request; the answer holds the call


def test_a_declined_call_keeps_the_psp_error(sandbox):
    order = PaymentOrderFactory(payment_event__payment_method="pm_card_chargeDeclinedInsufficientFunds")
    assert services.payment_order_execute(payment_order_id=order.id) == "failed"
    [call] = _calls(order)
    assert call["status"] == "failed" and call["error"].startswith("insufficient_funds")


def test_each_retry_is_its_own_row_on_the_timeline(api, sandbox):
    order = wait_state(one_order(api, payment_method="pm_sandbox_flaky"), "succeeded", "failed", "dead_letter")
    assert order.state == PaymentOrderState.SUCCEEDED and order.attempts == 3  # two 500s, then success
    calls = _calls(order)
    assert [(c["attempt"], c["status"]) for c in calls] == [(1, "retryable error"), (2, "retryable error"),
                                                           (3, "succeeded")]
    assert {c["idempotency_key"] for c in calls} == {order.psp_idempotency_key}  # one key: a retry cannot charge twice
    assert all(c["error"] for c in calls[:2])
    response = operator_client().get(f"/admin/payments/paymentorder/{order.pk}/timeline/")
    rows = [row for row, _ in response.context["rows"] if row.kind == "psp_call"]
    assert [r.title.split(" in ")[0] for r in rows] == ["PSP call 1: retryable error", "PSP call 2: retryable error",
                                                       "PSP call 3: succeeded"]
    assert all(r.title.endswith(" ms") for r in rows)
    html = response.content.decode()
    assert html.count(order.psp_idempotency_key) >= 3 and "executing → succeeded" in html


def test_the_psp_asked_before_a_replay_is_kept_on_the_replays_row(sandbox):
    order = PaymentOrderFactory(state=PaymentOrderState.DEAD_LETTER, attempts=5, failure_code="retries_exhausted")
    services.payment_order_replay_dead_letter(payment_order_id=order.id, operator="alice", reason="INC-42")
    replay = order.transitions.get(from_state="dead_letter")
    call = replay.detail["psp_call"]
    assert (call["kind"], call["status"], call["idempotency_key"]) == ("lookup", "lookup: no payment",
                                                                       order.psp_idempotency_key)
    assert isinstance(call["latency_ms"], int) and replay.reason == "INC-42"
    response = operator_client().get(f"/admin/payments/paymentorder/{order.pk}/timeline/")
    titles = [row.title for row, _ in response.context["rows"] if row.kind == "psp_call"]
    assert titles[0].startswith("PSP asked: no payment in ")  # then, if a worker ran it already, "PSP call 1: ..."
    assert all(title.startswith("PSP call 1: ") for title in titles[1:])
