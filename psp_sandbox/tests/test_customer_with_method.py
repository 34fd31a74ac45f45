"""``POST /v1/customers`` with ``payment_method``: the customer is created with the token attached, in one
call, as on Stripe; a token Stripe would refuse to attach is refused the same way, and no customer is made."""

from __future__ import annotations

import stripe

from core.tests import loopback
from psp_sandbox.tests.test_sandbox import sb_call
from psp_sandbox.tests.test_stripe_rules import _create_pm, events, pay, refused


def _customers(url: str) -> list[str]:
    return [e["data"]["object"]["id"] for e in events(url, "customer.created")]


def test_a_test_id_is_attached_as_a_new_payment_method_and_pays_the_customers_orders(url: str,
                                                                                    client: stripe.StripeClient):
    buyer = client.v1.customers.create(params={"payment_method": "pm_card_visa", "email": "b@example.com"},
                                       options={"idempotency_key": "with-method"})
    [attached] = events(url, "payment_method.attached")
    pm = attached["data"]["object"]
    assert pm["id"].startswith("pm_") and pm["id"] != "pm_card_visa" and pm["customer"] == buyer.id
    assert attached["request"]["idempotency_key"] == "with-method"
    assert len({pay(client, payment_method=pm["id"], customer=buyer.id).id for _ in range(2)}) == 2
    assert pay(client, payment_method="pm_card_visa", customer=buyer.id).status == "succeeded"
    # a replay under the key is the same customer: nothing created or attached again
    again = client.v1.customers.create(params={"payment_method": "pm_card_visa", "email": "b@example.com"},
                                       options={"idempotency_key": "with-method"})
    assert again.id == buyer.id and _customers(url) == [buyer.id]
    assert len(events(url, "payment_method.attached")) == 1


def test_a_created_card_is_attached_in_place_and_then_belongs_to_that_customer(url: str,
                                                                              client: stripe.StripeClient):
    token = _create_pm(url, "4242424242424242").json()["id"]
    buyer = client.v1.customers.create(params={"payment_method": token})
    assert client.v1.payment_methods.retrieve(token).customer == buyer.id
    paid = [pay(client, payment_method=token, customer=buyer.id) for _ in range(3)]  # one card, several orders
    assert {p.status for p in paid} == {"succeeded"} and len({p.id for p in paid}) == 3
    err = refused(pay, client, payment_method=token)  # attached: only with its customer
    assert err.http_status == 400 and f"belongs to the Customer {buyer.id}" in err.user_message


def test_what_attaching_refuses_creating_with_it_refuses_and_no_customer_is_made(url: str,
                                                                                client: stripe.StripeClient):
    err = refused(client.v1.customers.create, params={"payment_method": "pm_doesnotexist"})
    assert (err.http_status, err.code, err.param) == (400, "resource_missing", "payment_method")

    token = _create_pm(url, "4242424242424242").json()["id"]
    first = client.v1.customers.create(params={"payment_method": token})
    err = refused(client.v1.customers.create, params={"payment_method": token})  # already attached
    attach_err = refused(client.v1.payment_methods.attach, token, params={"customer": client.v1.customers.create().id})
    assert err.http_status == 400 and "already been attached" in err.user_message
    assert (err.code, err.user_message) == (attach_err.code, attach_err.user_message)

    spent = _create_pm(url, "4242424242424242").json()["id"]
    assert pay(client, payment_method=spent).status == "succeeded"  # unattached: single use
    err = refused(client.v1.customers.create, params={"payment_method": spent})
    assert (err.http_status, err.code) == (400, "payment_method_unexpected_state")

    made = _customers(url)
    assert made[0] == first.id and len(made) == 2  # the refused creates made none (the second is attach's own)
    assert [e["data"]["object"]["id"] for e in events(url, "payment_method.attached")] == [token]
    r = loopback.get(f"{url}/v1/payment_methods/{token}", auth=("sk_test_x", ""))
    assert r.json()["customer"] == first.id
    assert sb_call(url, "/_sandbox/charges")["double_charges"] == []
