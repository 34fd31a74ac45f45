"""What used to be a 500 (or an HTML page) on the API is a 4xx in the error shape, with nothing stored."""
import base64
import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from core.models import IdempotencyRecord
from core.services import api_client_create
from payments.models import PaymentEvent, PaymentOrder, Refund, Seller
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory, SellerFactory
from payments.tests.http.errors import assert_error

pytestmark = pytest.mark.django_db


def _checkout(drf_api, raw: bytes | str, key="k-1"):
    return drf_api.generic("POST", "/api/v1/checkouts", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def assert_nothing_stored():
    assert not PaymentEvent.objects.exists()
    assert not PaymentOrder.objects.exists()
    assert not IdempotencyRecord.objects.exists()


# --- a second seller with the same external_reference ---------------------------------------------------

@pytest.mark.parametrize("idempotency_key", [None, "onboard-2"])
def test_a_second_seller_with_the_same_external_reference_is_409(drf_api, idempotency_key):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    first = drf_api.post("/api/v1/sellers", {"name": "Ada", "external_reference": "ada-1"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="onboard-1")
    assert first.status_code == 201
    second = drf_api.post("/api/v1/sellers", {"name": "Ada again", "external_reference": "ada-1"}, format="json",
                      **headers)
    assert_error(second, 409, "seller_external_reference_taken", "external_reference")
    assert list(Seller.objects.values_list("name", flat=True)) == ["Ada"]
    # The refused request's key is released (only the first one's is kept), as for any 4xx.
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["onboard-1"]
    # The same key with a free reference then works.
    again = drf_api.post("/api/v1/sellers", {"name": "Ada 2", "external_reference": "ada-2"}, format="json", **headers)
    assert again.status_code == 201, again.content


def test_the_same_external_reference_is_free_for_another_client_and_blank_repeats(drf_api):
    assert drf_api.post("/api/v1/sellers", {"name": "A", "external_reference": "ref"}, format="json").status_code == 201
    _, other_key = api_client_create(name="other shop")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert other.post("/api/v1/sellers", {"name": "B", "external_reference": "ref"}, format="json").status_code == 201
    for name in ("C", "D"):
        assert drf_api.post("/api/v1/sellers", {"name": name}, format="json").status_code == 201
    assert Seller.objects.count() == 4


# --- NUL bytes in the path and the query string ---------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/v1/checkouts/pe_%00", "/api/v1/checkouts/%00", "/api/v1/payment-orders/ord_a%00b",
    "/api/v1/sellers/sel_%00", "/api/v1/%00",
])
def test_a_nul_byte_in_an_id_is_404(drf_api, seller, path):
    assert_error(drf_api.get(path), 404, "resource_missing")


def test_a_nul_byte_in_the_order_id_of_a_refund_is_404_and_nothing_is_stored(drf_api, client_and_key):
    event = PaymentEventFactory(client=client_and_key[0])
    order = PaymentOrderFactory(payment_event=event, seller=SellerFactory(client=client_and_key[0]))
    response = drf_api.post(f"/api/v1/payment-orders/{order.id}%00/refunds", {"amount": 1}, format="json",
                        HTTP_IDEMPOTENCY_KEY="r-1")
    assert_error(response, 404, "resource_missing")
    assert not Refund.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("query", ["limit=%00", "cursor=%00", "a%00=1", "limit=1%00"])
def test_a_nul_byte_in_the_query_string_is_400(drf_api, query):
    assert_error(drf_api.get(f"/api/v1/checkouts?{query}"), 400, "parameter_invalid")


# --- crafted pagination cursors --------------------------------------------------------------------------

def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", [
    _b64("p=notadate"), _b64("p="), _b64("p=2020-13-45T00:00:00+00:00"), _b64("p=2020-01-01 00:00:00"),
    _b64("p=2020-01-01T00:00:00+99:00"), _b64("p=99999-01-01T00:00:00+00:00"), _b64("o=-1"), _b64("o=x"),
    _b64("r=x"), _b64("p=\u00e9"), "junk", "!!!", "\u00e9\u00e9", "a" * 5000, "",
])
@pytest.mark.parametrize("path", ["/api/v1/checkouts", "/api/v1/sellers"])
def test_a_crafted_cursor_is_400(drf_api, seller, path, cursor):
    response = drf_api.get(path, {"cursor": cursor})
    if cursor == "":
        assert response.status_code in (200, 400)  # an empty cursor: DRF's "no cursor"; never a 500
        return
    assert_error(response, 400, "invalid_cursor", "cursor")


def test_a_real_cursor_still_pages(drf_api, client_and_key):
    for n in range(5):
        SellerFactory(client=client_and_key[0], name=f"s{n}")
    seen, url = [], "/api/v1/sellers?limit=2"
    while url:
        page = drf_api.get(url)
        assert page.status_code == 200, page.content
        seen += [row["id"] for row in page.json()["results"]]
        url = page.json()["next"]
    assert len(seen) == len(set(seen)) == 5


# --- deeply nested, NUL, lone surrogates in a JSON body -----------------------------------------------------

def _body(seller, reference='"buyer-1"') -> str:
    orders = json.dumps([{"seller": seller.id, "amount": 1000, "currency": "usd"}])
    return '{"buyer": {"reference": ' + reference + '}, "payment_method": "pm_card_visa", "orders": ' + orders + "}"


@pytest.mark.parametrize("depth", [40, 1000, 30_000])  # 30,000: just under 64 KB
def test_deeply_nested_json_in_a_checkout_is_400(drf_api, seller, depth):
    nested = "[" * depth + "1" + "]" * depth
    assert_error(_checkout(drf_api, _body(seller, nested)), 400, "malformed_body")
    assert_error(_checkout(drf_api, "[" * depth + "]" * depth, key="k-2"), 400, "malformed_body")
    assert_nothing_stored()


@pytest.mark.parametrize("reference", ['"a\\u0000b"', '"\\ud800"', "NaN", "Infinity"])
def test_text_or_numbers_postgresql_cannot_store_are_400(drf_api, seller, reference):
    response = _checkout(drf_api, _body(seller, reference))
    assert_error(response, 400)
    assert_nothing_stored()


def test_a_nul_byte_in_an_unknown_key_is_400(drf_api, seller):
    body = json.loads(_body(seller))
    body["buyer"]["x\u0000"] = 1
    assert_error(_checkout(drf_api, json.dumps(body)), 400, "malformed_body")
    assert_nothing_stored()


def test_a_sane_checkout_still_goes_through(drf_api, seller):
    assert _checkout(drf_api, _body(seller)).status_code == 201


# --- Django's own error pages on /api/ and /webhooks/ are JSON -----------------------------------------------

def test_a_disallowed_host_is_400_json_on_the_api():
    for path in ("/api/v1/checkouts", "/webhooks/psp"):
        assert_error(Client().get(path, HTTP_HOST="evil.example"), 400, "invalid_request")


def test_unknown_paths_are_404_json(drf_api):
    assert_error(drf_api.get("/api/nope"), 404, "resource_missing")
    assert_error(Client().get("/webhooks/nope"), 404, "resource_missing")


def test_a_3_mb_body_is_413_json(drf_api, seller):
    assert_error(_checkout(drf_api, "x" * (3 * 1024 * 1024)), 413, "body_too_large")
    assert_nothing_stored()
