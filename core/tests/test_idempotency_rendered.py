"""The idempotency wrapper fingerprints the body as the view parsed it and stores the response it renders: the
fingerprint is the one computed from the raw body (a key stored before would otherwise look reused), the stored
response is the answer's value, and the answer's bytes are DRF's rendering of it."""
import io
import json
import random
from unittest import mock

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from core.models import IdempotencyRecord
from core.parsers import JSONParser
from core.services import api_client_create, request_fingerprint
from core.tests.test_input_serializer import _checkout_bodies
from core.views import idempotency_key
from payments.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db

ODD_BODIES = [
    b"{}", b"[]", b"null", b"true", b"0", b'"text"', b"[1, 2.0, -0.0, 1e5, 1E-7, 12345678901234567890123]",
    b' { "b" : 1 ,\n\t"a":[ {"z":null,"y":false}, "\\u00e9\xc3\xa9" ] } ', b'{"a": 1, "a": 2}',
    b'{"s": "\\"quoted\\" \\\\ back \\/ slash \\b\\f\\n\\r\\t", "u": "\\u2028\\u2029 \xe2\x80\xa8"}',
    b'{"emoji": "\\ud83d\\ude00 \xf0\x9f\x98\x80", "k\xc3\xa9y": {"nested": [[[[[]]]]]}}',
    b'{"f": 0.1, "g": 1.0000000000000002, "h": 5e-324, "i": 1.7976931348623157e308, "j": 100000000000000000000.0}',
    json.dumps({"deep": [[[[[[[[[[{"x": 1}]]]]]]]]]]}).encode(),
]


def _parsed(body: bytes):
    """The body as the API's parser gives it to the view (``request.data``)."""
    return JSONParser().parse(io.BytesIO(body), "application/json", {"encoding": "utf-8"})


def test_the_fingerprint_of_the_parsed_body_is_the_raw_bodys():
    rng = random.Random(8)
    bodies = [*ODD_BODIES, *(json.dumps(b, indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5,
                                        sort_keys=rng.random() < 0.5).encode() for b in _checkout_bodies(rng, 300))]
    for body in bodies:
        for method, path in (("POST", "/api/v1/checkouts"), ("POST", "/api/v1/payment-orders/ord_1/refunds")):
            assert request_fingerprint(method=method, path=path, body=body, parsed=_parsed(body)) == \
                request_fingerprint(method=method, path=path, body=body), body


@pytest.fixture
def shop():
    client, key = api_client_create(name="shop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client, api


def _post(api, path, body: bytes, key: str, **extra):
    return api.generic("POST", path, body, content_type=extra.pop("content_type", "application/json"),
                       HTTP_IDEMPOTENCY_KEY=key, **extra)


def _checkout_body(sellers, **style) -> bytes:
    return json.dumps({"orders": [{"currency": "USD", "amount": 1000 + i * 10, "seller": s.id}
                                  for i, s in enumerate(sellers)],
                       "buyer": {"reference": "b-é\u2028", "email": ""}, "payment_method": "pm_card_visa"},
                      **style).encode()


@pytest.mark.parametrize("style", [{}, {"indent": 3}, {"ensure_ascii": False}, {"sort_keys": True},
                                   {"separators": (",", ":")}])
def test_a_checkout_stores_the_raw_bodys_fingerprint_and_its_answer(shop, style):
    client, api = shop
    sellers = [SellerFactory(client=client) for _ in range(3)]
    body = _checkout_body(sellers, **style)
    with mock.patch.object(json, "loads", wraps=json.loads) as loads:
        response = _post(api, "/api/v1/checkouts", body, "k")
    assert not [c for c in loads.call_args_list if isinstance(c.args[0], bytes)]  # not parsed a second time
    assert response.status_code == 201 and response["Content-Type"] == "application/json"
    assert response.content == JSONRenderer().render(response.data, "application/json")  # DRF's bytes
    record = IdempotencyRecord.objects.get(client=client, key="k")
    assert record.request_fingerprint == request_fingerprint(method="POST", path="/api/v1/checkouts", body=body)
    assert record.response_body == json.loads(response.content) and record.response_status == 201
    again = _post(api, "/api/v1/checkouts", _checkout_body(sellers, indent=1), "k")  # the same content
    assert again["Idempotent-Replayed"] == "true" and again.json() == response.json()
    assert _post(api, "/api/v1/checkouts", _checkout_body(sellers[:2]), "k").status_code == 422  # reused


def test_an_indented_answer_is_what_drf_renders_for_the_media_type_asked(shop):
    client, api = shop
    body = _checkout_body([SellerFactory(client=client)])
    response = _post(api, "/api/v1/checkouts", body, "k", HTTP_ACCEPT="application/json; indent=4")
    assert response.status_code == 201 and b"\n    " in response.content
    assert response.content == JSONRenderer().render(response.data, "application/json; indent=4")
    assert IdempotencyRecord.objects.get(key="k").response_body == json.loads(response.content)


def test_a_body_read_in_another_charset_is_fingerprinted_from_its_bytes(shop):
    """Parsed as Latin-1 (the request says so), the body is not what ``json.loads`` reads: parsed again."""
    client, api = shop
    body = json.dumps({"name": "Caf\u00e9", "external_reference": "r"}, ensure_ascii=False).encode()
    response = _post(api, "/api/v1/sellers", body, "k", content_type="application/json; charset=latin-1")
    assert response.status_code == 201 and response.json()["name"] == "Caf\u00c3\u00a9"
    record = IdempotencyRecord.objects.get(key="k")
    assert record.request_fingerprint == request_fingerprint(method="POST", path="/api/v1/sellers", body=body)


def test_sellers_and_sessions_store_the_raw_bodys_fingerprint(shop):
    client, api = shop
    seller_body = b'{ "external_reference": "x", "name": "Shop \\u00e9" }'
    session_body = json.dumps({"buyer": {"reference": "b"}, "success_url": "https://s.example/ok",
                               "cancel_url": "https://s.example/no",
                               "orders": [{"seller": SellerFactory(client=client).id, "amount": 300,
                                           "currency": "usd"}]}, indent=2).encode()
    for path, body in (("/api/v1/sellers", seller_body), ("/api/v1/checkout-sessions", session_body)):
        response = _post(api, path, body, path)
        assert response.status_code == 201, response.content
        assert response.content == JSONRenderer().render(response.data, "application/json")
        record = IdempotencyRecord.objects.get(key=path)
        assert record.request_fingerprint == request_fingerprint(method="POST", path=path, body=body)
        assert record.response_body == response.json()


@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": "k-1"}, {"HTTP_IDEMPOTENCY_KEY": ""},
                                     {"HTTP_IDEMPOTENCY_KEY": " é "}, {"HTTP_X_IDEMPOTENCY_KEY": "x"}])
def test_the_key_is_the_header_django_reads(headers):
    request = Request(APIRequestFactory().post("/x", **headers))
    assert idempotency_key(request) == request.headers.get("Idempotency-Key")
