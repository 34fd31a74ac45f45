"""The PSP as it really behaves, with a real worker and the real sandbox: retries, dead letters,
unknown outcomes, lost tasks, refunds."""
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments import services
from payments.models import PaymentOrder, PaymentOrderState, Refund, WebhookEvent
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean, checkout, onboard, sandbox_money
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def configure(sandbox_url, **config):
    loopback.post(f"{sandbox_url}/_sandbox/config", json=config, timeout=5).raise_for_status()


def one_order(api, *, payment_method="pm_card_visa", amount=1000, key="k1"):
    seller = onboard(api, "seller")
    response = checkout(api, [{"seller": seller, "amount": amount, "currency": "usd"}], key=key,
                        payment_method=payment_method)
    assert response.status_code == 201, response.text
    return PaymentOrder.objects.get(pk=response.json()["orders"][0]["id"])


def wait_state(order, *states, timeout=30):
    def reached():
        order.refresh_from_db()
        return order.state in states

    wait_for(reached, timeout=timeout, message=f"{order.id} to reach {states}")
    return order


def test_retryable_errors_are_retried_then_succeed(api, sandbox):
    order = wait_state(one_order(api, payment_method="pm_sandbox_flaky"), "succeeded", "failed", "dead_letter")
    assert order.state == PaymentOrderState.SUCCEEDED
    assert order.attempts == 3  # two 500s, then success (the sandbox's flaky_failures is 2)
    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["count"] == 1 and money["double_charges"] == []
    assert_audit_clean()


def test_declines_are_final_at_once(api):
    order = wait_state(one_order(api, payment_method="pm_card_chargeDeclinedInsufficientFunds"), "failed")
    assert order.attempts == 1 and order.failure_code == "insufficient_funds"


def test_exhausted_retries_dead_letter_then_operator_replay(api, sandbox, admin_client, settings):
    configure(sandbox, transient_error_rate=1.0)  # 500s the PSP did not save: the same key may be retried
    order = wait_state(one_order(api), "dead_letter", "succeeded", "failed")
    assert order.state == PaymentOrderState.DEAD_LETTER
    assert order.attempts == settings.PAYMENT_EXECUTE_MAX_ATTEMPTS
    assert sandbox_money(sandbox)["charges"] == []

    configure(sandbox, transient_error_rate=0.0)
    url = "/admin/payments/paymentorder/"
    asked = admin_client.post(url, {"action": "replay_dead_letter", "_selected_action": [order.id]})
    assert asked.status_code == 200 and b"reason" in asked.content  # the action first asks why
    done = admin_client.post(url, {"action": "replay_dead_letter", "_selected_action": [order.id],
                                   "confirmed": "1", "reason": "PSP outage over (INC-42)"})
    assert done.status_code == 302
    wait_state(order, "succeeded")
    replay = order.transitions.get(from_state="dead_letter")
    assert replay.actor == "operator:admin" and replay.reason == "PSP outage over (INC-42)"
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1000
    assert_audit_clean()


def test_timeout_is_unknown_until_the_janitor_asks_the_psp(api, sandbox):
    configure(sandbox, timeout_delay_s=4)
    order = wait_state(one_order(api, payment_method="pm_sandbox_timeout"), "unknown", "succeeded")
    assert order.state == PaymentOrderState.UNKNOWN  # a timeout is not a failure
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0

    PaymentOrder.objects.filter(pk=order.pk).update(next_action_at=timezone.now())  # due now
    assert services.payment_orders_resolve_unknown() == 1
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert order.transitions.last().actor == "janitor"
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 1
    assert_audit_clean()


def test_janitor_sends_again_what_the_psp_never_saw(celery_worker, sandbox):
    order = PaymentOrderFactory(state=PaymentOrderState.UNKNOWN, attempts=1)
    assert services.payment_order_resolve(payment_order_id=order.id) == PaymentOrderState.EXECUTING
    wait_state(order, "succeeded")
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 1


def test_timeout_resolved_by_a_webhook(api, sandbox, live_server):
    configure(sandbox, timeout_delay_s=4, webhook_url=f"{live_server.url}/webhooks/psp")
    order = wait_state(one_order(api, payment_method="pm_sandbox_timeout"), "succeeded", timeout=15)
    assert any(t.actor.startswith("webhook:") for t in order.transitions.all())
    wait_for(lambda: not PaymentOrder.objects.filter(state="executing").exists(), message="the timed-out call")
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert_audit_clean()


def test_processing_payment_resolved_by_duplicated_out_of_order_webhooks(api, sandbox, live_server):
    configure(sandbox, webhook_url=f"{live_server.url}/webhooks/psp", webhook_duplicate_rate=1.0,
              webhook_reorder=True, processing_delay_s=0.5)
    order = wait_state(one_order(api, payment_method="pm_sandbox_processing"), "succeeded", timeout=20)
    wait_for(lambda: WebhookEvent.objects.filter(deliveries__gte=2).count() >= 2, message="duplicate deliveries")
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1000
    assert_audit_clean()


@pytest.mark.parametrize("state", [PaymentOrderState.NOT_STARTED, PaymentOrderState.EXECUTING])
def test_lost_task_is_redriven_by_the_sweeper(celery_worker, sandbox, state):
    """Never enqueued (not_started), or its worker died mid-call (executing): nothing is in the
    broker for it. Once it is due, the sweeper enqueues it again."""
    order = PaymentOrderFactory(state=state, next_action_at=timezone.now() - timedelta(seconds=1))
    fresh = PaymentOrderFactory(state=state, next_action_at=timezone.now() + timedelta(hours=1))
    assert services.payment_orders_redrive_stalled() == 1
    wait_state(order, "succeeded")
    fresh.refresh_from_db()
    assert fresh.state == state  # not due: left alone
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 1


def test_partial_refunds_up_to_the_captured_amount(api, sandbox):
    from concurrent.futures import ThreadPoolExecutor

    order = wait_state(one_order(api, amount=1000), "succeeded")
    url = f"/api/v1/payment-orders/{order.id}/refunds"

    def refund(amount, key):
        return api.post(url, json={"amount": amount, "reason": "returned"}, headers={"Idempotency-Key": key})

    assert refund(300, "r1").status_code == 201
    replay = refund(300, "r1")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert refund(300, "r2").status_code == 201
    with ThreadPoolExecutor(max_workers=8) as pool:  # 8 x 300 against the 400 left
        responses = list(pool.map(lambda n: refund(300, f"c{n}"), range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [400] * 7
    assert all(r.json()["error"]["code"] == "amount_too_large" for r in responses if r.status_code == 400)
    too_much = refund(101, "r3")
    assert too_much.status_code == 400
    assert refund(100, "r4").status_code == 201
    assert refund(1, "r5").json()["error"]["code"] == "charge_already_refunded"

    wait_for(lambda: Refund.objects.filter(state="succeeded").count() == 4, message="4 refunds to succeed")
    order.refresh_from_db()
    assert order.amount_refunded == 1000
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0
    assert ledger_selectors.account_balance(code=accounts.seller_payable(order.seller_id), currency="usd") == 0
    assert sandbox_money(sandbox)["totals"]["usd"]["refunded"] == 1000
    assert list(Refund.objects.first().transitions.values_list("to_state", flat=True)) == ["pending", "succeeded"]
    assert_audit_clean()


def test_database_refuses_refunds_beyond_the_capture():
    order = PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, amount=500)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE payments_paymentorder SET amount_refunded = 501 WHERE id = %s", [order.id])
