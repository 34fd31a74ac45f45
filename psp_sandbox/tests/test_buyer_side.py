"""The buyer's side of the sandbox: the 3-D Secure test card whose issuer refuses the challenge."""

from __future__ import annotations

import stripe

from core.tests import loopback
from psp_sandbox.tests.test_stripe_rules import pay


def test_a_card_whose_issuer_refuses_the_challenge_fails_whatever_the_buyer_answers(
    url: str, client: stripe.StripeClient
) -> None:
    pi = pay(client, payment_method="pm_card_authenticationRequiredFails", off_session=None,
             return_url="https://shop.test/back")
    assert pi.status == "requires_action" and pi.next_action.type == "redirect_to_url"
    done = loopback.post(pi.next_action.redirect_to_url.url, data={"outcome": "succeed"})
    assert done.status_code == 302 and "redirect_status=failed" in done.headers["location"]
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method" and failed.latest_charge is None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_the_card_number_that_always_asks_creates_a_method_that_asks(url: str, client: stripe.StripeClient) -> None:
    method = loopback.post(f"{url}/v1/payment_methods", auth=("pk_test_sandbox", ""),
                           data={"type": "card", "card[number]": "4000002760003184", "card[exp_month]": "12",
                              "card[exp_year]": "34", "card[cvc]": "123"}).json()
    assert method["id"].startswith("pm_") and method["card"]["last4"] == "3184"
    assert "4000002760003184" not in str(method)
    pi = pay(client, payment_method=method["id"], off_session=None, return_url="https://shop.test/back")
    assert pi.status == "requires_action"
