"""3-D Secure with the buyer present: an order waits in ``requires_action`` for its buyer, the answer
comes back by redirect and by webhook (applied once), a failed challenge fails the order with a clear
code, an abandoned one is cancelled at the PSP and expires. Real HTTP, worker and sandbox."""
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import selectors as ledger_selectors
from payments import services
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PaymentOrderTransition, WebhookEvent
from payments.tests.test_checkout_flow import assert_audit_clean, onboard, sandbox_money
from payments.tests.test_psp_faults import configure, wait_state
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SHOP_RETURN = "https://shop.example/orders/42?step=paid"
ASKS = "pm_card_authenticationRequired"  # Stripe's 4000 0027 6000 3184: always asks for authentication
REFUSED = "pm_card_authenticationRequiredFails"  # 4000 0084 0000 1280: the issuer refuses the challenge


def checkout_present(api, sellers, *, payment_method=ASKS, key="3ds-1", amount=1200, return_url=SHOP_RETURN):
    body = {"buyer": {"reference": "buyer-3ds", "email": "b@example.com"}, "payment_method": payment_method,
            "orders": [{"seller": s, "amount": amount + n, "currency": "eur"} for n, s in enumerate(sellers)],
            "return_url": return_url}
    response = api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": key})
    assert response.status_code == 201, response.text
    return response.json()


def orders_of(event_id):
    return list(PaymentOrder.objects.filter(payment_event_id=event_id).order_by("created_at", "id"))


def wait_all(event_id, *states):
    return wait_for(lambda: (lambda os: os if all(o.state in states for o in os) else None)(orders_of(event_id)),
                    message=f"orders of {event_id} to reach {states}")


def answer_challenge(challenge_url, outcome):
    """The buyer on the sandbox's challenge page: its form posts the outcome, the sandbox redirects back."""
    page = loopback.get(challenge_url, timeout=5)
    assert page.status_code == 200 and "3D Secure" in page.text
    response = loopback.post(challenge_url, data={"outcome": outcome}, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def follow_return(url):
    """The buyer's browser arriving on our return URL: where do we send them?"""
    response = loopback.get(url, timeout=30)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def succeeded_transitions(order_id):
    return PaymentOrderTransition.objects.filter(payment_order_id=order_id, to_state="succeeded").count()


def test_a_card_that_asks_waits_for_its_buyer_and_the_redirect_decides_it(api, sandbox, settings):
    seller = onboard(api, "seller")
    created = checkout_present(api, [seller])
    [order] = wait_all(created["id"], "requires_action")
    assert order.psp_reference.startswith("pi_") and order.failure_code == ""
    remaining = (order.next_action_at - timezone.now()).total_seconds()
    assert settings.PAYMENT_ACTION_EXPIRY_SECONDS - 60 < remaining <= settings.PAYMENT_ACTION_EXPIRY_SECONDS

    shown = api.get(f"/api/v1/checkouts/{created['id']}").json()
    assert shown["state"] == "processing" and shown["return_url"] == SHOP_RETURN
    challenge = shown["orders"][0]["next_action"]["redirect_to_url"]["url"]
    assert shown["orders"][0]["next_action"]["type"] == "redirect_to_url"
    assert challenge == order.next_action_url == f"{sandbox}/_sandbox/3ds/{order.psp_reference}"

    # A forged return (the buyer never authenticated) is not believed: the PSP is asked, and says "waiting".
    event = PaymentEvent.objects.get(pk=created["id"])
    forged = f"{event.psp_return_url}?payment_intent={order.psp_reference}&redirect_status=succeeded"
    assert follow_return(forged) == challenge
    assert wait_state(order, "requires_action").state == PaymentOrderState.REQUIRES_ACTION

    back = answer_challenge(challenge, "succeed")
    assert back.startswith(event.psp_return_url + "?") and event.psp_return_url.startswith(str(api.base_url))
    landing = follow_return(back)
    assert landing.startswith("https://shop.example/orders/42?")
    assert parse_qs(urlsplit(landing).query) == {"step": ["paid"], "payment_event": [created["id"]]}

    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED and order.next_action_url == ""
    steps = list(PaymentOrderTransition.objects.filter(payment_order=order).values_list("from_state", "to_state"))
    assert steps == [("", "not_started"), ("not_started", "executing"), ("executing", "requires_action"),
                     ("requires_action", "succeeded")]
    assert api.get(f"/api/v1/checkouts/{created['id']}").json()["state"] == "succeeded"
    assert follow_return(back) == landing  # the return replayed: nothing more happens
    assert succeeded_transitions(order.id) == 1
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="eur") == 1200
    money = sandbox_money(sandbox)
    assert money["totals"]["eur"]["captured"] == 1200 and money["totals"]["eur"]["count"] == 1
    assert money["double_charges"] == []
    assert_audit_clean()


def test_two_sellers_two_challenges_answered_by_redirect_and_webhook_applied_once(api, sandbox, live_server):
    configure(sandbox, webhook_url=f"{live_server.url}/webhooks/psp")
    sellers = [onboard(api, f"seller {n}") for n in range(2)]
    created = checkout_present(api, sellers, key="3ds-two")
    first, second = wait_all(created["id"], "requires_action")
    assert first.psp_reference != second.psp_reference  # one PaymentIntent, one challenge per seller

    # Back from the first challenge, the buyer is sent on to the second seller's.
    back = answer_challenge(first.next_action_url, "succeed")
    with ThreadPoolExecutor(4) as pool:  # the buyer's browser retrying while the webhook arrives
        landings = list(pool.map(lambda _: follow_return(back), range(4)))
    assert set(landings) == {second.next_action_url}
    back = answer_challenge(second.next_action_url, "succeed")
    assert follow_return(back).startswith("https://shop.example/orders/42?")

    wait_for(lambda: WebhookEvent.objects.filter(type="payment_intent.succeeded", status="processed").count() == 2,
             message="both payment_intent.succeeded webhooks")
    for order in orders_of(created["id"]):
        assert order.state == PaymentOrderState.SUCCEEDED and succeeded_transitions(order.id) == 1
    wait_for(lambda: WebhookEvent.objects.filter(type="payment_intent.requires_action").count() == 2,
             message="both payment_intent.requires_action webhooks (late: they change nothing)")
    assert all(succeeded_transitions(order.id) == 1 for order in orders_of(created["id"]))
    assert PaymentEvent.objects.get(pk=created["id"]).state == "succeeded"
    assert ledger_selectors.account_balance(code="assets:psp_receivable", currency="eur") == 1200 + 1201
    money = sandbox_money(sandbox)
    assert money["totals"]["eur"]["captured"] == 2401 and money["totals"]["eur"]["count"] == 2
    assert money["double_charges"] == []
    assert_audit_clean()


@pytest.mark.parametrize(("payment_method", "outcome"), [
    (ASKS, "fail"),  # the buyer fails the challenge
    (REFUSED, "succeed"),  # the issuer refuses it, whatever the buyer does
])
def test_a_failed_challenge_fails_the_order_with_a_clear_code(api, sandbox, payment_method, outcome):
    seller = onboard(api, "seller")
    created = checkout_present(api, [seller], payment_method=payment_method)
    [order] = wait_all(created["id"], "requires_action")
    assert follow_return(answer_challenge(order.next_action_url, outcome)).startswith("https://shop.example/")
    order.refresh_from_db()
    assert order.state == PaymentOrderState.FAILED
    assert order.failure_code == "payment_intent_authentication_failure"
    assert "failed authentication" in order.failure_message
    shown = api.get(f"/api/v1/checkouts/{created['id']}").json()
    assert shown["state"] == "failed" and shown["orders"][0]["next_action"] is None
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="eur") == 0
    assert sandbox_money(sandbox)["totals"].get("eur", {}).get("captured", 0) == 0
    assert_audit_clean()


def test_a_declined_card_with_the_buyer_present_fails_at_once(api, sandbox):
    created = checkout_present(api, [onboard(api, "seller")], payment_method="pm_card_visa_chargeDeclined")
    [order] = wait_all(created["id"], "failed")
    assert order.failure_code == "generic_decline"
    assert not PaymentOrderTransition.objects.filter(payment_order=order, to_state="requires_action").exists()


def test_an_abandoned_challenge_is_cancelled_at_the_psp_and_expires(api, sandbox):
    seller = onboard(api, "seller")
    created = checkout_present(api, [seller])
    [order] = wait_all(created["id"], "requires_action")
    assert services.payment_orders_expire_actions() == 0  # not due yet
    PaymentOrder.objects.filter(pk=order.pk).update(next_action_at=timezone.now())
    assert services.payment_orders_expire_actions() == 1

    order.refresh_from_db()
    assert order.state == PaymentOrderState.FAILED and order.failure_code == "authentication_expired"
    intent = loopback.get(f"{sandbox}/v1/payment_intents/{order.psp_reference}", auth=("sk_test_sandbox", ""),
                          timeout=5).json()
    assert intent["status"] == "canceled" and intent["cancellation_reason"] == "abandoned"
    # The buyer coming back later can no longer pay: the challenge is gone and nothing is charged.
    assert order.next_action_url == ""
    late = loopback.post(f"{sandbox}/_sandbox/3ds/{order.psp_reference}", data={"outcome": "succeed"}, timeout=5)
    assert late.status_code == 400
    event = PaymentEvent.objects.get(pk=created["id"])
    assert follow_return(event.psp_return_url).startswith("https://shop.example/")
    order.refresh_from_db()
    assert order.state == PaymentOrderState.FAILED
    assert PaymentEvent.objects.get(pk=event.pk).state == "failed"
    assert sandbox_money(sandbox)["totals"].get("eur", {}).get("captured", 0) == 0
    assert_audit_clean()


def test_the_janitor_applies_a_challenge_answered_but_never_reported(api, sandbox):
    """No redirect, no webhook (none configured): at expiry the janitor asks first and finds it paid."""
    seller = onboard(api, "seller")
    created = checkout_present(api, [seller])
    [order] = wait_all(created["id"], "requires_action")
    answer_challenge(order.next_action_url, "succeed")  # the buyer closed the tab before the redirect
    PaymentOrder.objects.filter(pk=order.pk).update(next_action_at=timezone.now())
    services.payment_orders_expire_actions()
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="eur") == 1200
    assert_audit_clean()


def test_a_return_for_an_unknown_checkout_is_a_clear_page(live_server):
    response = loopback.get(f"{live_server.url}/pay/return/pe_00000000000000000000000000", timeout=5)
    assert response.status_code == 404 and "not valid" in response.text
    assert loopback.post(f"{live_server.url}/pay/return/pe_00000000000000000000000000", timeout=5).status_code == 405


@pytest.mark.parametrize("return_url", ["ftp://shop.example/back", "javascript:alert(1)", "/relative/path",
                                        "https://shop.example/" + "a" * 2100, "https://shop.example/4242424242424242"])
def test_a_bad_return_url_is_a_400_in_the_error_shape(api, sandbox, return_url):
    seller = onboard(api, "seller")
    body = {"buyer": {"reference": "b"}, "payment_method": ASKS,
            "orders": [{"seller": seller, "amount": 1000, "currency": "eur"}], "return_url": return_url}
    response = api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": "bad-url"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "return_url" and error["type"] == "invalid_request_error"
    assert "4242424242424242" not in response.text
    assert not PaymentEvent.objects.exists()
