"""Bad input is answered with a 4xx in one error shape, and nothing is written."""
import json

import pytest
from rest_framework.test import APIClient

from core.services import api_client_create
from payments.models import PaymentEvent, PaymentOrder
from payments.tests.factories import SellerFactory
from payments.tests.http.errors import assert_error

pytestmark = pytest.mark.django_db


def _body(seller, **overrides):
    body = {"buyer": {"reference": "buyer-1"}, "payment_method": "pm_card_visa",
            "orders": [{"seller": seller.id, "amount": 1000, "currency": "usd"}]}
    body.update(overrides)
    return body


def _post(drf_api, body, key="k-1", raw=None):
    return drf_api.generic("POST", "/api/v1/checkouts", raw if raw is not None else json.dumps(body),
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


BAD_ORDERS = [
    ({"amount": 0}, "min_value", "orders[0].amount"),
    ({"amount": -5}, "min_value", "orders[0].amount"),
    ({"amount": 10.5}, "parameter_invalid", "orders[0].amount"),
    ({"amount": "1000"}, "parameter_invalid", "orders[0].amount"),
    ({"amount": True}, "parameter_invalid", "orders[0].amount"),
    ({"amount": 100_000_000}, "max_value", "orders[0].amount"),
    ({"currency": "xyz"}, "currency_invalid", "orders[0].currency"),
    ({"currency": "dollars"}, "currency_invalid", "orders[0].currency"),
    ({"currency": "US"}, "currency_invalid", "orders[0].currency"),
    ({"seller": "sel_nobody"}, "seller_not_onboarded", "orders[0].seller"),
    ({"tip": 5}, "parameter_unknown", "orders[0].tip"),
]


@pytest.mark.parametrize(("override", "code", "param"), BAD_ORDERS)
def test_bad_order_is_refused(drf_api, seller, override, code, param):
    body = _body(seller)
    body["orders"][0].update(override)
    assert_error(_post(drf_api, body), 400, code, param)
    assert PaymentEvent.objects.count() == 0 and PaymentOrder.objects.count() == 0


def test_other_clients_seller_is_not_onboarded_for_me(drf_api):
    assert_error(_post(drf_api, _body(SellerFactory())), 400, "seller_not_onboarded", "orders[0].seller")


def test_two_orders_for_one_seller_are_refused(drf_api, seller):
    body = _body(seller, orders=[{"seller": seller.id, "amount": 1, "currency": "usd"}] * 2)
    assert_error(_post(drf_api, body), 400, "duplicate_seller", "orders[1].seller")


@pytest.mark.parametrize(("override", "code", "param"), [
    ({"orders": []}, "empty", "orders"),
    ({"payment_method": "4242424242424242"}, "card_number", "payment_method"),
    ({"payment_method": "pm_4242 4242 4242 4242"}, "card_number", "payment_method"),
    ({"payment_method": "visa"}, "not_token", "payment_method"),
    ({"buyer": {}}, "parameter_required", "buyer.reference"),
    ({"card_number": "4242424242424242"}, "parameter_unknown", "card_number"),
])
def test_bad_checkout_is_refused(drf_api, seller, override, code, param):
    assert_error(_post(drf_api, _body(seller, **override)), 400, code, param)
    assert PaymentEvent.objects.count() == 0


def test_a_card_number_is_never_echoed_back(drf_api, seller):
    response = _post(drf_api, _body(seller, payment_method="4242424242424242"))
    assert b"4242424242424242" not in response.content


def test_too_many_orders_are_refused(drf_api, client_and_key, settings):
    sellers = SellerFactory.create_batch(settings.CHECKOUT_MAX_ORDERS + 1, client=client_and_key[0])
    body = _body(sellers[0], orders=[{"seller": s.id, "amount": 1, "currency": "usd"} for s in sellers])
    assert_error(_post(drf_api, body), 400, "max_length", "orders")


@pytest.mark.parametrize(("raw", "code"), [("{not json", "malformed_body"), ("[]", "parameter_invalid"),
                                           ("null", "parameter_invalid")])
def test_malformed_bodies_are_refused(drf_api, seller, raw, code):
    response = _post(drf_api, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_oversized_body_is_refused_with_413(drf_api, seller, settings):
    body = _body(seller, buyer={"reference": "x" * (settings.API_MAX_BODY_BYTES + 1)})
    assert_error(_post(drf_api, body), 413, "body_too_large")


def test_missing_idempotency_key_is_refused(drf_api, seller):
    response = drf_api.post("/api/v1/checkouts", _body(seller), format="json")
    assert_error(response, 400, "idempotency_key_missing", "Idempotency-Key")


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic abc"])
def test_unauthenticated_requests_get_401(seller, auth):
    drf_api = APIClient()
    if auth:
        drf_api.credentials(HTTP_AUTHORIZATION=auth)
    assert_error(_post(drf_api, _body(seller)), 401, "unauthenticated")


def test_wrong_content_type_and_method(drf_api):
    assert_error(drf_api.generic("POST", "/api/v1/checkouts", "a=b", content_type="application/x-www-form-urlencoded",
                              HTTP_IDEMPOTENCY_KEY="k"), 415, "unsupported_media_type")
    assert_error(drf_api.delete("/api/v1/checkouts"), 405, "method_not_allowed")


def test_unknown_objects_are_404_in_the_error_shape(drf_api):
    assert_error(drf_api.get("/api/v1/checkouts/pe_nope"), 404, "resource_missing")
    assert_error(drf_api.get("/api/v1/payment-orders/ord_nope"), 404, "resource_missing")
    assert_error(drf_api.get("/api/v1/no-such-endpoint"), 404, "resource_missing")


def test_a_client_sees_only_its_own_objects(drf_api, seller):
    assert _post(drf_api, _body(seller)).status_code == 201
    event = PaymentEvent.objects.get()
    _, other_key = api_client_create(name="other shop")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert other.get(f"/api/v1/checkouts/{event.id}").status_code == 404
    assert other.get(f"/api/v1/payment-orders/{event.orders.get().id}").status_code == 404
    assert other.get(f"/api/v1/sellers/{seller.id}").status_code == 404
    assert other.get("/api/v1/checkouts").json()["results"] == []
    assert drf_api.get("/api/v1/checkouts").json()["results"][0]["id"] == event.id


def test_seller_onboarding_and_schema(drf_api):
    response = drf_api.post("/api/v1/sellers", {"name": "Ada's shop", "external_reference": "ada"}, format="json")
    assert response.status_code == 201
    assert response.json()["id"].startswith("sel_")
    assert_error(drf_api.post("/api/v1/sellers", {"name": ""}, format="json"), 400, "parameter_blank", "name")
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/checkouts" in schema.json()["paths"]
