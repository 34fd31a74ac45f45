"""The sandbox refuses and answers what Stripe refuses and answers (issue 14), through the official SDK."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
import stripe

from core.tests import loopback
from psp_sandbox.tests.test_sandbox import make_client, sb_call, wait_for

ADAPTER = {"allowed_payment_method_types": ["card"], "confirm": True, "off_session": True}


def pay(client: stripe.StripeClient, key: str | None = None, **params: Any) -> stripe.PaymentIntent:
    """A PaymentIntent with the given parameters (defaults: 1000 usd, pm_card_visa, as the adapter sends)."""
    body = {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", **ADAPTER, **params}
    body = {k: v for k, v in body.items() if v is not None}
    return client.v1.payment_intents.create(params=body, options={"idempotency_key": key or uuid.uuid4().hex})


def refused(fn: Any, *args: Any, **kwargs: Any) -> stripe.StripeError:
    """The SDK error a call raises."""
    with pytest.raises(stripe.StripeError) as exc:
        fn(*args, **kwargs)
    return exc.value


def events(url: str, type_: str | None = None) -> list[dict[str, Any]]:
    """Stored events (the payload as sent), oldest first."""
    return [e["event"] for e in sb_call(url, "/_sandbox/events")["events"] if type_ in (None, e["type"])]


# -- 1. payment methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pm", "code", "decline_code", "param", "advice"),
    [
        ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline", None, None),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", None, "try_again_later"),  # noqa: E501
        ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card", None, "do_not_try_again"),
        ("pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card", None, "do_not_try_again"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "exp_month", "confirm_card_data"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "cvc", "confirm_card_data"),
        ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error", None, "try_again_later"),
        ("pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_declined", "card_velocity_exceeded", None, None),
        ("pm_card_chargeDeclined", "card_declined", "generic_decline", None, None),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", None, "try_again_later"),
    ],
)
def test_documented_declines(
    url: str, client: stripe.StripeClient, pm: str, code: str, decline_code: str, param: str | None, advice: str | None
) -> None:
    err = refused(pay, client, payment_method=pm)
    assert isinstance(err, stripe.CardError) and err.http_status == 402
    body = err.error
    assert (body.code, body.decline_code, body.param) == (code, decline_code, param)
    if advice:
        assert body.advice_code == advice
    assert body.doc_url.startswith("https://stripe.com/docs/error-codes/")
    assert body.request_log_url.endswith(f"{err.request_id}?t={body.request_log_url.rsplit('=', 1)[1]}")
    assert body.charge.startswith("ch_") and body.payment_intent.status == "requires_payment_method"
    assert body.payment_method.object == "payment_method" and body.payment_method.card.last4
    assert body.payment_method.id.startswith("pm_") and body.payment_method.id != pm  # a new pm_ per use


def test_magic_ids_are_reusable_and_unknown_ids_refused(url: str, client: stripe.StripeClient) -> None:
    first, second = pay(client), pay(client)
    assert first.status == second.status == "succeeded" and first.payment_method != second.payment_method
    assert client.v1.payment_methods.retrieve(first.payment_method).card.last4 == "4242"
    err = refused(pay, client, payment_method="pm_x")
    assert (err.http_status, err.code, err.param) == (400, "resource_missing", "payment_method")
    assert err.user_message == "No such PaymentMethod: 'pm_x'"


def _create_pm(url: str, number: str | None = None, **card: str) -> httpx.Response:
    """POST /v1/payment_methods with a publishable key, as Stripe.js does."""
    data = {"type": "card", "card[exp_month]": "12", "card[exp_year]": str(time.gmtime().tm_year + 2)}
    if number:
        data["card[number]"] = number
    data.update({f"card[{k}]": v for k, v in card.items()})
    return loopback.post(f"{url}/v1/payment_methods", data=data, headers={"Authorization": "Bearer pk_test_abc"})


@pytest.mark.parametrize(
    ("number", "outcome"),
    [
        ("4242424242424242", "succeeded"),
        ("5555555555554444", "succeeded"),
        ("4000000000000002", "generic_decline"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000009987", "lost_card"),
        ("4000000000009979", "stolen_card"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
        ("4000002760003184", "authentication_required"),
        ("4000000000003220", "authentication_required"),
    ],
)
def test_created_card_follows_its_test_number(url: str, client: stripe.StripeClient, number: str, outcome: str) -> None:
    r = _create_pm(url, number, cvc="123")
    assert r.status_code == 200, r.text
    pm = r.json()
    assert pm["card"]["last4"] == number[-4:] and "number" not in pm["card"] and number not in r.text
    if outcome == "succeeded":
        assert pay(client, payment_method=pm["id"]).status == "succeeded"
    else:
        assert refused(pay, client, payment_method=pm["id"]).error.decline_code == outcome


def test_card_numbers_refused(url: str, client: stripe.StripeClient) -> None:
    bad = _create_pm(url, "4242424242424241").json()["error"]
    assert (bad["type"], bad["code"], bad["param"]) == ("card_error", "incorrect_number", "number")
    live = _create_pm(url, "4111111111111111")
    assert live.status_code == 402 and live.json()["error"]["decline_code"] == "test_mode_live_card"
    expired = _create_pm(url, "4242424242424242", exp_year="2001").json()["error"]
    assert (expired["code"], expired["param"]) == ("invalid_expiry_year", "exp_year")
    assert _create_pm(url, token="tok_visa_chargeDeclinedLostCard").status_code == 200
    assert _create_pm(url, token="tok_nope").json()["error"]["code"] == "resource_missing"
    pm = _create_pm(url, "4000056655665556").json()
    assert pm["card"]["funding"] == "debit"
    # a publishable key serves only this endpoint
    r = loopback.get(f"{url}/v1/payment_methods/{pm['id']}", headers={"Authorization": "Bearer pk_test_abc"})
    assert r.status_code == 401


def test_attach_and_single_use(url: str, client: stripe.StripeClient) -> None:
    buyer = client.v1.customers.create(
        params={"metadata": {"buyer_reference": "b-1"}, "email": "b@example.com"}, options={"idempotency_key": "c"}
    )
    assert buyer.id.startswith("cus_") and client.v1.customers.retrieve(buyer.id).metadata["buyer_reference"] == "b-1"
    attached = client.v1.payment_methods.attach("pm_card_visa", params={"customer": buyer.id})
    assert attached.id.startswith("pm_") and attached.id != "pm_card_visa" and attached.customer == buyer.id
    # one buyer's card, several sellers: each order its own PaymentIntent
    ids = {pay(client, payment_method=attached.id, customer=buyer.id).id for _ in range(3)}
    assert len(ids) == 3
    err = refused(pay, client, payment_method=attached.id)  # attached, without customer
    assert err.http_status == 400 and f"belongs to the Customer {buyer.id}" in err.user_message
    other = client.v1.customers.create()
    assert refused(pay, client, payment_method=attached.id, customer=other.id).http_status == 400
    err = refused(client.v1.payment_methods.attach, attached.id, params={"customer": other.id})
    assert err.http_status == 400 and "already been attached" in err.user_message
    # a created card is attached in place
    created = _create_pm(url, "4242424242424242").json()
    assert client.v1.payment_methods.attach(created["id"], params={"customer": other.id}).id == created["id"]
    # an unattached card serves one PaymentIntent
    single = _create_pm(url, "4242424242424242").json()["id"]
    assert pay(client, payment_method=single).status == "succeeded"
    err = refused(pay, client, payment_method=single)
    assert (err.http_status, err.code) == (400, "payment_method_unexpected_state")
    assert "previously used with a PaymentIntent without Customer attachment" in err.user_message
    assert "may not be used again" in err.user_message
    err = refused(client.v1.payment_methods.attach, single, params={"customer": other.id})
    assert err.http_status == 400 and err.code == "payment_method_unexpected_state"
    types = [e["type"] for e in events(url) if e["type"].startswith(("customer", "payment_method"))]
    assert types == ["customer.created", "payment_method.attached", "customer.created", "payment_method.attached"]


# -- 2. PaymentIntent rules --------------------------------------------------------------


def test_automatic_payment_methods_and_return_url(url: str, client: stripe.StripeClient) -> None:
    err = refused(pay, client, allowed_payment_method_types=None, off_session=None)
    assert err.param == "return_url" and "`return_url` must be specified" in err.user_message
    default = pay(client, allowed_payment_method_types=None)  # off_session: no redirect possible
    assert default.automatic_payment_methods.enabled is True
    assert default.automatic_payment_methods.allow_redirects == "always"
    never = pay(client, allowed_payment_method_types=None, off_session=None, automatic_payment_methods={
        "enabled": True, "allow_redirects": "never"})  # fmt: skip
    assert never.status == "succeeded"
    back = pay(client, allowed_payment_method_types=None, off_session=None, return_url="https://x.test/r")
    assert back.status == "succeeded"
    err = refused(pay, client, confirm=False)
    assert err.param == "off_session"
    assert pay(client, confirm=False, off_session=None).status == "requires_confirmation"
    assert default.capture_method == "automatic_async" and default.client_secret.startswith(default.id + "_secret_")
    err = refused(pay, client, capture_method="later")
    assert err.param == "capture_method" and "automatic, automatic_async, or manual" in err.user_message


def test_payment_method_types_by_api_version(url: str, client: stripe.StripeClient) -> None:
    err = refused(pay, client, allowed_payment_method_types=None, payment_method_types=["card"])  # endive
    assert (err.http_status, err.code, err.param) == (
        400, "payment_method_types_no_longer_supported", "payment_method_types")  # fmt: skip
    err = refused(pay, client, automatic_payment_methods={"enabled": True})
    assert (err.code, err.http_status) == ("parameters_exclusive", 400)
    err = refused(pay, client, allowed_payment_method_types=["card", "ideal"], off_session=None)
    assert err.param == "return_url"
    on_session = pay(client, off_session=None)  # card only: nothing redirects
    assert on_session.status == "succeeded" and on_session.allowed_payment_method_types == ["card"]

    def legacy(**form: str) -> httpx.Response:
        data = {"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true", **form}
        headers = {"Authorization": "Bearer sk_test_x", "Stripe-Version": "2024-06-20"}
        return loopback.post(f"{url}/v1/payment_intents", data=data, headers=headers)

    assert legacy(**{"payment_method_types[0]": "card"}).json()["status"] == "succeeded"
    refused_old = legacy(**{"allowed_payment_method_types[0]": "card"}).json()["error"]
    assert refused_old["code"] == "parameter_unknown"
    assert legacy().json()["error"]["param"] == "return_url"


@pytest.mark.parametrize(
    ("amount", "currency", "code", "param"),
    [
        (49, "usd", "amount_too_small", "amount"),
        (1, "usd", "amount_too_small", "amount"),
        (29, "gbp", "amount_too_small", "amount"),
        (10, "jpy", "amount_too_small", "amount"),
        (100000000, "usd", "amount_too_large", "amount"),
        (1050, "isk", "invalid_charge_amount", "amount"),
        (1005, "kwd", "invalid_charge_amount", "amount"),
        (1000, "xyz", "parameter_invalid_string", "currency"),
    ],
)
def test_amount_and_currency_rules(
    url: str, client: stripe.StripeClient, amount: int, currency: str, code: str, param: str
) -> None:
    err = refused(pay, client, amount=amount, currency=currency)
    assert (err.http_status, err.code, err.param) == (400, code, param)


@pytest.mark.parametrize(
    ("amount", "currency"), [(50, "usd"), (30, "gbp"), (50, "jpy"), (99999999, "usd"), (1100, "isk"), (1010, "kwd")]
)
def test_amounts_stripe_accepts(url: str, client: stripe.StripeClient, amount: int, currency: str) -> None:
    assert pay(client, amount=amount, currency=currency).amount == amount


# -- 3. requests Stripe refuses ----------------------------------------------------------


def test_unknown_parameters_enums_metadata_keys(url: str, client: stripe.StripeClient) -> None:
    err = refused(pay, client, colour="blue")
    assert (err.code, err.param) == ("parameter_unknown", "colour")
    assert err.user_message == "Received unknown parameter: colour"
    err = refused(pay, client, allowed_payment_method_types=None, automatic_payment_methods={"enabled": True, "x": "1"})
    assert err.param == "automatic_payment_methods[x]"
    pi = pay(client)
    err = refused(client.v1.payment_intents.retrieve, pi.id, params={"colour": "blue"})
    assert err.code == "parameter_unknown"
    err = refused(client.v1.refunds.create, params={"payment_intent": pi.id, "reason": "because"})
    assert err.param == "reason" and "duplicate, fraudulent, or requested_by_customer" in err.user_message
    err = refused(client.v1.customers.create, params={"favourite": "x"})
    assert err.param == "favourite"
    assert refused(pay, client, metadata={"k" * 41: "v"}).param == "metadata"
    assert refused(pay, client, metadata={"k": "v" * 501}).param == "metadata[k]"
    assert refused(pay, client, metadata={f"k{i}": "v" for i in range(51)}).param == "metadata"
    assert pay(client, metadata={"k" * 40: "v" * 500}).status == "succeeded"
    err = refused(pay, client, key="k" * 256)
    assert err.http_status == 400 and "255" in err.user_message
    # a validation error is not saved: the same key then executes
    assert refused(pay, client, key="k-fix", amount=10).code == "amount_too_small"
    assert pay(client, key="k-fix", amount=1000).status == "succeeded"


# -- 3-D Secure --------------------------------------------------------------------------


@pytest.mark.parametrize("pm", ["pm_card_threeDSecure2Required", "pm_card_authenticationRequired"])
def test_three_d_secure_off_session_is_declined(url: str, client: stripe.StripeClient, pm: str) -> None:
    err = refused(pay, client, payment_method=pm)
    assert isinstance(err, stripe.CardError)
    assert (err.code, err.error.decline_code) == ("authentication_required", "authentication_required")
    pi = client.v1.payment_intents.retrieve(err.error.payment_intent.id)
    assert pi.status == "requires_payment_method" and pi.last_payment_error.code == "authentication_required"


def test_three_d_secure_challenge(url: str, client: stripe.StripeClient) -> None:
    pi = pay(client, payment_method="pm_card_threeDSecureRequired", off_session=None, return_url="https://shop.test/r?a=1")
    assert pi.status == "requires_action" and pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://shop.test/r?a=1" and pi.latest_charge is None
    page = loopback.get(pi.next_action.redirect_to_url.url)
    assert page.status_code == 200 and 'value="succeed"' in page.text and 'value="fail"' in page.text
    done = loopback.post(pi.next_action.redirect_to_url.url, data={"outcome": "succeed"})
    assert done.status_code == 302
    location = done.headers["location"]
    assert location.startswith("https://shop.test/r?a=1&payment_intent=" + pi.id)
    assert f"payment_intent_client_secret={pi.client_secret}" in location and "redirect_status=succeeded" in location
    paid = client.v1.payment_intents.retrieve(pi.id)
    assert paid.status == "succeeded" and paid.latest_charge.startswith("ch_") and paid.next_action is None
    assert types_of(url) == ["payment_intent.created", "payment_intent.requires_action", "charge.succeeded",
                             "payment_intent.succeeded"]  # fmt: skip
    assert events(url, "charge.succeeded")[-1]["request"]["id"] is None  # caused by the buyer, not a request


def test_three_d_secure_failed_and_cancel(url: str, client: stripe.StripeClient) -> None:
    sdk = pay(client, payment_method="pm_card_threeDSecure2Required", off_session=None)
    assert sdk.status == "requires_action" and sdk.next_action.type == "use_stripe_sdk"
    answer = loopback.post(f"{url}/_sandbox/3ds/{sdk.id}", data={"outcome": "fail"})
    assert answer.status_code == 200 and answer.json()["payment_intent"]["status"] == "requires_payment_method"
    failed = client.v1.payment_intents.retrieve(sdk.id)
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    other = pay(client, payment_method="pm_card_threeDSecure2Required", off_session=None)
    canceled = client.v1.payment_intents.cancel(other.id, params={"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled" and canceled.cancellation_reason == "abandoned"
    assert events(url, "payment_intent.canceled")[0]["data"]["object"]["id"] == other.id
    err = refused(client.v1.payment_intents.cancel, pay(client).id)
    assert err.code == "payment_intent_unexpected_state"


def test_manual_capture(url: str, client: stripe.StripeClient) -> None:
    pi = pay(client, capture_method="manual")
    assert pi.status == "requires_capture" and pi.amount_capturable == 1000
    assert sb_call(url, "/_sandbox/charges")["totals"] == {}
    assert client.v1.payment_intents.capture(pi.id).status == "succeeded"
    assert sb_call(url, "/_sandbox/charges")["totals"]["usd"]["captured"] == 1000


# -- 4. idempotency, request ids, API versions --------------------------------------------


def test_request_ids_and_api_version(url: str) -> None:
    client = make_client(url)
    pi = pay(client, key="k-req")
    req_id = pi.last_response.headers["Request-Id"]
    assert req_id.startswith("req_") and pi.last_response.headers["Stripe-Version"] == stripe.api_version
    for event in events(url):
        assert event["request"] == {"id": req_id, "idempotency_key": "k-req"}
        assert event["api_version"] == stripe.api_version
    r = loopback.post(
        f"{url}/v1/customers",
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2024-06-20"},
    )
    assert r.headers["Stripe-Version"] == "2024-06-20"
    assert events(url, "customer.created")[0]["api_version"] == "2024-06-20"
    r = loopback.post(f"{url}/v1/customers", headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "latest!"})
    assert r.status_code == 400


def test_processing_completion_event_has_no_request(url: str, client: stripe.StripeClient) -> None:
    sb_call(url, "/_sandbox/config", {"processing_delay_s": 0.2})
    pi = pay(client, payment_method="pm_sandbox_processing", key="k-proc")
    wait_for(lambda: client.v1.payment_intents.retrieve(pi.id).status == "succeeded")
    types = [(e["type"], e["request"]["id"] is None) for e in events(url)]
    assert types == [("payment_intent.created", False), ("charge.pending", False),
                     ("payment_intent.processing", False), ("charge.succeeded", True),
                     ("payment_intent.succeeded", True)]  # fmt: skip


def test_idempotency_keys_expire(url: str, client: stripe.StripeClient) -> None:
    sb_call(url, "/_sandbox/config", {"idempotency_ttl_s": 0.3})
    first = pay(client, key="k-ttl")
    assert pay(client, key="k-ttl").id == first.id
    time.sleep(0.5)
    assert pay(client, key="k-ttl").id != first.id


# -- 5. search lag and refund lists -------------------------------------------------------


def test_search_lags_but_retrieve_and_refund_list_do_not(url: str, client: stripe.StripeClient) -> None:
    sb_call(url, "/_sandbox/config", {"search_lag_s": 0.6})
    pi = pay(client, metadata={"payment_order_id": "ord_lag"})
    query = {"query": "metadata['payment_order_id']:'ord_lag'"}
    assert client.v1.payment_intents.search(params=query).data == []
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300, "metadata": {"refund_id": "r"}})
    listed = client.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in listed.data] == [refund.id]
    assert types_of(url) == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded",
                             "refund.created", "charge.refunded"]  # fmt: skip
    wait_for(lambda: client.v1.payment_intents.search(params=query).data)


def types_of(url: str) -> list[str]:
    """Event types in order."""
    return [e["type"] for e in events(url)]


def test_config_changes_while_payments_flow_never_deadlock(url: str, client: stripe.StripeClient) -> None:
    """Request threads read the config while holding the store's lock; a config update must not
    hold its own lock while it waits for the store's (it did, and a chaos run hung on it)."""
    from concurrent.futures import ThreadPoolExecutor

    def configure(n: int) -> int:
        lag = 0.0 if n % 2 else 2.0
        return loopback.post(f"{url}/_sandbox/config", json={"search_lag_s": lag}, timeout=10).status_code

    def charge(_: int) -> str:
        return pay(client).status

    with ThreadPoolExecutor(max_workers=16) as pool:
        updates = pool.map(configure, range(60))
        payments = pool.map(charge, range(60))
        assert set(updates) == {200} and set(payments) == {"succeeded"}
