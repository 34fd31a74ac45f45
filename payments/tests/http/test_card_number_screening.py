"""Card numbers are refused in every free-text field of the API: 400 card_number_refused, the field
as param, the number neither echoed nor stored. Digit runs that are not card numbers pass."""
import json
import logging

import pytest

from core.models import IdempotencyRecord
from core.validators import contains_card_number, luhn_valid
from payments.models import PaymentEvent, PaymentOrderState, Refund, Seller
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory

pytestmark = pytest.mark.django_db

# Luhn-valid card numbers, spelled the ways people write them (Visa, Amex, Mastercard test numbers).
CARD_SPELLINGS = [
    "4242424242424242",
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    "my card is 4242 4242 4242 4242, please refund",
    "378282246310005",
    "5555-5555-5555-4444 exp 12/30",
    "ref 77 4242 4242 4242 4242 9",  # other numbers next to it, separated by a space
]
# Digit runs that are not card numbers (checked below: each fails Luhn or is not 13-19 digits).
NOT_CARDS = [
    "order 4242424242424241",  # an order number: 16 digits failing Luhn
    "call +44 20 7946 0958",  # a phone number: 12 digits
    "+1 555 123 4567 89",  # a longer phone number, failing Luhn
    "invoice 2024-000123456-7",  # dashes, failing Luhn
    "42424242424242424242424",  # 23 digits: too long for a card
]


def test_the_fixtures_are_what_they_claim():
    def digits(text):
        return [int(ch) for ch in text if ch.isdigit()]

    assert all(contains_card_number(text) for text in CARD_SPELLINGS)
    assert luhn_valid(digits("4242424242424242")) and not luhn_valid(digits("4242424242424241"))
    assert not any(contains_card_number(text) for text in NOT_CARDS)
    assert not luhn_valid(digits("+1 555 123 4567 89")) and not luhn_valid(digits("2024-000123456-7"))


@pytest.mark.parametrize("text", [
    "４２４２４２４２４２４２４２４２",  # full-width digits are digits
    "4242 - 4242 - 4242 - 4242",
    "4242\u20134242\u20134242\u20134242",  # en dashes
    "4242\n4242\n4242\n4242",
    "x4242424242424242y",
])
def test_other_ways_of_writing_a_card_are_found(text):
    assert contains_card_number(text)


@pytest.mark.parametrize("text", ["", "pm_card_visa", "buyer-42", "2024-01-15 12:30:00", "1234567890123456789012345"])
def test_ordinary_text_is_not_a_card(text):
    assert not contains_card_number(text)


@pytest.fixture
def succeeded_order(client_and_key, seller):
    event = PaymentEventFactory(client=client_and_key[0])
    return PaymentOrderFactory(payment_event=event, seller=seller, state=PaymentOrderState.SUCCEEDED, amount=1000)


def _checkout_body(seller, reference="buyer-1", email="b@example.com"):
    return {"buyer": {"reference": reference, "email": email}, "payment_method": "pm_card_visa",
            "orders": [{"seller": seller.id, "amount": 1000, "currency": "usd"}]}


def _checkout(drf_api, body, key="k-1"):
    return drf_api.generic("POST", "/api/v1/checkouts", json.dumps(body), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY=key)


def _seller(drf_api, body):
    return drf_api.generic("POST", "/api/v1/sellers", json.dumps(body), content_type="application/json")


def _refund(drf_api, order, body, key="r-1"):
    return drf_api.generic("POST", f"/api/v1/payment-orders/{order.id}/refunds", json.dumps(body),
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def _card_digits(text):
    return "".join(ch for ch in text if ch.isdigit())


def _assert_refused(response, param, text):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["code"], error["param"]) == ("card_number_refused", param)
    assert error["message"]
    body = response.content.decode()
    assert text not in body and _card_digits(text)[-8:] not in body  # neither echoed whole nor in part


# --- each field, each spelling --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", CARD_SPELLINGS)
def test_a_card_number_in_the_buyer_reference_is_refused(drf_api, seller, text, caplog):
    with caplog.at_level(logging.DEBUG):
        _assert_refused(_checkout(drf_api, _checkout_body(seller, reference=text)), "buyer.reference", text)
    assert _card_digits(text)[-8:] not in caplog.text  # never logged
    assert not PaymentEvent.objects.exists() and not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("text", CARD_SPELLINGS)
def test_a_card_number_in_the_buyer_email_is_refused(drf_api, seller, text):
    email = text.replace(",", "").replace(" ", "-") + "@example.com"  # a well-formed address holding a card
    _assert_refused(_checkout(drf_api, _checkout_body(seller, email=email)), "buyer.email", email)
    assert not PaymentEvent.objects.exists()


def test_a_card_number_as_the_whole_email_is_refused_as_a_card_not_as_a_bad_address(drf_api, seller):
    _assert_refused(_checkout(drf_api, _checkout_body(seller, email="4242 4242 4242 4242")), "buyer.email",
                    "4242 4242 4242 4242")


def test_a_card_number_as_a_json_number_is_refused_without_echoing_it(drf_api, seller):
    body = _checkout_body(seller)
    body["buyer"]["reference"] = 4242424242424242
    response = _checkout(drf_api, body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "buyer.reference"
    assert b"4242424242424242" not in response.content and not PaymentEvent.objects.exists()


def test_a_card_number_in_an_order_seller_is_refused(drf_api, seller):
    body = _checkout_body(seller)
    body["orders"][0]["seller"] = "4242 4242 4242 4242"
    _assert_refused(_checkout(drf_api, body), "orders[0].seller", "4242 4242 4242 4242")


def test_a_card_number_as_an_unknown_parameter_name_is_refused_without_echoing_it(drf_api, seller):
    body = _checkout_body(seller)
    body["buyer"]["4242424242424242"] = "x"
    response = _checkout(drf_api, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "card_number_refused"
    assert b"4242424242424242" not in response.content


@pytest.mark.parametrize("send", [
    lambda drf_api, seller: _checkout(drf_api, {**_checkout_body(seller), "4242424242424242": 1}),
    lambda drf_api, seller: _seller(drf_api, {"name": "x", "4242424242424242": 1}),
], ids=["checkout", "seller"])
def test_a_card_number_as_an_unknown_top_level_parameter_name_is_refused_not_a_500(drf_api, seller, send):
    response = send(drf_api, seller)
    assert response.status_code == 400, response.content
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("card_number_refused", None)
    assert b"4242424242424242" not in response.content


@pytest.mark.parametrize("text", CARD_SPELLINGS)
@pytest.mark.parametrize("field", ["name", "external_reference"])
def test_a_card_number_in_a_seller_field_is_refused(drf_api, field, text):
    body = {"name": "Shop", **{field: text}}
    _assert_refused(_seller(drf_api, body), field, text)
    assert not Seller.objects.exists()


@pytest.mark.parametrize("text", CARD_SPELLINGS)
def test_a_card_number_in_a_refund_reason_is_refused(drf_api, succeeded_order, text):
    _assert_refused(_refund(drf_api, succeeded_order, {"amount": 100, "reason": text}), "reason", text)
    assert not Refund.objects.exists()
    succeeded_order.refresh_from_db()
    assert succeeded_order.amount_refunded == 0


@pytest.mark.parametrize("text", CARD_SPELLINGS[:3])
def test_the_payment_method_still_refuses_card_numbers(drf_api, seller, text):
    response = _checkout(drf_api, {**_checkout_body(seller), "payment_method": text})
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("card_number", "payment_method")
    assert _card_digits(text) not in response.content.decode()


# --- digit runs that are not cards go through ----------------------------------------------------------------

@pytest.mark.parametrize("text", NOT_CARDS)
def test_other_digit_runs_are_accepted_in_every_field(drf_api, seller, succeeded_order, text):
    response = _checkout(drf_api, _checkout_body(seller, reference=text, email=f"{_card_digits(text)}@example.com"))
    assert response.status_code == 201, response.content
    assert response.json()["buyer"]["reference"] == text

    response = _seller(drf_api, {"name": text, "external_reference": text})
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["external_reference"]) == (text, text)

    response = _refund(drf_api, succeeded_order, {"amount": 1, "reason": text})
    assert response.status_code == 201, response.content
    assert response.json()["reason"] == text
