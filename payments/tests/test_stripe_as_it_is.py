"""The executor against a PSP that behaves as Stripe does: saved 500s, a lagging search,
single-use tokens, unknown payment methods and cards that want 3-D Secure."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from payments import services
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PSPCustomer, Refund
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean, checkout, onboard, sandbox_money, wait_terminal
from payments.tests.test_psp_faults import configure, one_order, wait_state
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def tokenise(sandbox_url, number="4242424242424242"):
    """A buyer's card turned into a PaymentMethod, as Stripe.js would (a token, not a magic test id)."""
    response = loopback.post(f"{sandbox_url}/v1/payment_methods", auth=("sk_test_sandbox", ""), timeout=5,
                             data={"type": "card", "card[number]": number, "card[exp_month]": "12",
                                "card[exp_year]": "2034", "card[cvc]": "123"})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def make_due(order):
    PaymentOrder.objects.filter(pk=order.pk).update(next_action_at=timezone.now())


def test_one_token_pays_every_seller_through_the_buyers_customer(api, sandbox):
    token = tokenise(sandbox)
    sellers = [onboard(api, f"seller {n}") for n in range(3)]
    orders = [{"seller": s, "amount": 1000 + n, "currency": "usd"} for n, s in enumerate(sellers)]
    response = checkout(api, orders, key="one-card", payment_method=token)
    assert response.status_code == 201, response.text
    final = wait_terminal(api, response.json()["id"])
    assert [o["state"] for o in final["orders"]] == ["succeeded"] * 3, final

    event = PaymentEvent.objects.get(pk=response.json()["id"])
    customer = PSPCustomer.objects.get(buyer_reference="buyer-42")
    assert event.psp_customer == customer.psp_customer_id and event.psp_payment_method == token
    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["count"] == 3 and money["double_charges"] == []
    for order in final["orders"]:
        intent = loopback.get(f"{sandbox}/v1/payment_intents/{order['psp_reference']}", auth=("sk_test_sandbox", ""),
                              timeout=5).json()
        assert intent["customer"] == customer.psp_customer_id and intent["payment_method"] == token

    # The same buyer's next checkout reuses their customer at the PSP.
    again = checkout(api, orders[:2], key="one-card-2", payment_method="pm_card_visa")
    wait_terminal(api, again.json()["id"])
    assert PSPCustomer.objects.count() == 1
    assert PaymentEvent.objects.get(pk=again.json()["id"]).psp_customer == customer.psp_customer_id
    assert_audit_clean()


def test_a_spent_token_fails_the_order_with_the_psps_code_and_is_not_retried(api, sandbox):
    token = tokenise(sandbox)
    first = wait_state(one_order(api, payment_method=token, key="first"), "succeeded", "failed")
    assert first.state == PaymentOrderState.SUCCEEDED
    second = wait_state(one_order(api, payment_method=token, key="second"), "succeeded", "failed", "dead_letter")
    assert second.state == PaymentOrderState.FAILED
    assert second.failure_code == "payment_method_unexpected_state" and second.attempts == 1
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 1


@pytest.mark.parametrize(("payment_method", "code"), [
    ("pm_doesnotexist123", "resource_missing"),
    ("pm_card_visa_chargeDeclinedLostCard", "lost_card"),
    ("pm_card_authenticationRequired", "authentication_required"),  # off-session: 3-D Secure can't be asked
])
def test_what_the_psp_refuses_is_a_clear_failure_never_a_retry_loop(api, sandbox, payment_method, code):
    order = wait_state(one_order(api, payment_method=payment_method), "succeeded", "failed", "dead_letter")
    assert order.state == PaymentOrderState.FAILED
    assert order.failure_code == code and order.attempts == 1
    assert sandbox_money(sandbox)["totals"].get("usd", {}).get("captured", 0) == 0


def test_a_500_saved_against_the_key_gets_a_new_key_only_once_the_search_is_trusted(api, sandbox, settings):
    configure(sandbox, error_rate=1.0)  # Stripe's 500: saved against the key and replayed
    order = wait_state(one_order(api), "unknown", "succeeded", "failed", "dead_letter")
    assert order.state == PaymentOrderState.UNKNOWN and order.psp_key_spent_at is not None
    assert order.attempts == 1  # no blind retries under a key that can only replay the 500
    configure(sandbox, error_rate=0.0)

    make_due(order)
    services.payment_orders_resolve_unknown()  # the search may still lag: wait, don't re-key yet
    order.refresh_from_db()
    assert order.state == PaymentOrderState.UNKNOWN and order.psp_key_generation == 0
    assert order.next_action_at >= order.psp_key_spent_at

    time.sleep(settings.PSP_SEARCH_CONSISTENCY_SECONDS)
    services.payment_orders_resolve_unknown()  # nothing found past the lag: send under a new key
    order = wait_state(order, "succeeded")
    assert order.psp_idempotency_key == f"{order.id}.r1"
    money = sandbox_money(sandbox)
    assert [c["idempotency_key"] for c in money["charges"]] == [f"{order.id}.r1"]
    assert money["double_charges"] == []
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1000
    assert_audit_clean()


def test_the_janitor_resends_under_the_same_key_when_the_search_lags(api, sandbox):
    configure(sandbox, timeout_delay_s=3, search_lag_s=60)
    order = wait_state(one_order(api, payment_method="pm_sandbox_timeout"), "unknown", "succeeded")
    assert order.state == PaymentOrderState.UNKNOWN
    wait_for(lambda: sandbox_money(sandbox)["charges"], message="the charge at the PSP")
    make_due(order)
    services.payment_orders_resolve_unknown()  # the search shows nothing yet: same key, so no second charge
    order = wait_state(order, "succeeded")
    assert order.psp_idempotency_key == order.id
    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["count"] == 1 and money["double_charges"] == []
    assert_audit_clean()


def test_dead_letter_replay_asks_the_psp_first(api, sandbox):
    configure(sandbox, transient_error_rate=1.0)
    order = wait_state(one_order(api), "dead_letter", "succeeded")
    assert order.state == PaymentOrderState.DEAD_LETTER
    configure(sandbox, transient_error_rate=0.0)
    # Meanwhile the PSP did charge it (as a retry that went through would have).
    loopback.post(f"{sandbox}/v1/payment_intents", auth=("sk_test_sandbox", ""), timeout=5,
                  headers={"Idempotency-Key": order.id},
                  data={"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true",
                     "off_session": "true", "allowed_payment_method_types[0]": "card",
                     "metadata[payment_order_id]": order.id}).raise_for_status()
    configure(sandbox, search_lag_s=0)
    state = services.payment_order_replay_dead_letter(payment_order_id=order.id, operator="alice",
                                                      reason="PSP outage over")
    assert state == PaymentOrderState.SUCCEEDED
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 1
    assert_audit_clean()


def test_a_refund_whose_key_the_psp_spent_is_looked_up_then_sent_under_a_new_key(api, sandbox):
    order = wait_state(one_order(api, amount=1000), "succeeded")
    configure(sandbox, refund_error_rate=1.0)  # each refund call: a 500 saved against its key
    response = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 400},
                        headers={"Idempotency-Key": "refund-1"})
    assert response.status_code == 201, response.text
    refund = Refund.objects.get(pk=response.json()["id"])

    def rekeyed():
        refund.refresh_from_db()
        return refund.psp_key_generation >= 1

    wait_for(rekeyed, message="the refund's spent key to be replaced")
    assert refund.state == "pending"
    configure(sandbox, refund_error_rate=0.0)
    wait_for(lambda: Refund.objects.filter(pk=refund.pk, state="succeeded").exists(), message="the refund")
    refund.refresh_from_db()
    assert refund.psp_idempotency_key.startswith(f"{refund.id}.r")
    money = sandbox_money(sandbox)
    assert [r["amount"] for r in money["refunds"]] == [400] and money["totals"]["usd"]["refunded"] == 400
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 600
    assert_audit_clean()


def test_orders_of_a_lost_event_task_ready_the_payment_method_themselves(celery_worker, sandbox):
    """The event's task never ran (lost): the sweeper enqueues its orders, and each readies the
    buyer's payment method itself; the PSP's idempotency keys make them agree on one."""
    token = tokenise(sandbox)
    event = PaymentEventFactory(payment_method=token, psp_payment_method="")
    due = timezone.now() - timedelta(seconds=1)
    orders = [PaymentOrderFactory(payment_event=event, next_action_at=due) for _ in range(3)]
    assert services.payment_orders_redrive_stalled() == 3
    for order in orders:
        assert wait_state(order, "succeeded", "failed", "dead_letter").state == PaymentOrderState.SUCCEEDED
    event.refresh_from_db()
    assert event.psp_payment_method == token and PSPCustomer.objects.count() == 1
    assert sandbox_money(sandbox)["totals"]["usd"]["count"] == 3
