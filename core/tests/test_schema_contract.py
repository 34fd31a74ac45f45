"""What the OpenAPI schema promises (core/schema.py) and the server behaviour schemathesis found
wanting (core/tests/test_schemathesis.py fuzzes the whole of it against gunicorn)."""
import json

import pytest
from rest_framework.test import APIClient

from core.services import api_client_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def drf_api():
    _, key = api_client_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def _error(response, status, code, param):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("path", ["/api/v1/sellers", "/api/v1/checkouts"])
@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "%D9%A5"])  # the last: Arabic-Indic 5
def test_a_limit_outside_1_to_100_is_a_400(drf_api, path, limit):
    # DRF's pagination took these as the default page size (or 100): schemathesis' negative data.
    _error(drf_api.get(f"{path}?limit={limit}"), 400, "parameter_invalid", "limit")


@pytest.mark.parametrize("limit", ["1", "100"])
def test_a_limit_from_1_to_100_is_taken(drf_api, limit):
    response = drf_api.get(f"/api/v1/sellers?limit={limit}")
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"next", "previous", "results"}


@pytest.mark.parametrize("body, param", [
    ({"name": 0}, "name"),
    ({"name": "shop", "external_reference": 0}, "external_reference"),
    ({"name": 1.5}, "name"),
    ({"name": True}, "name"),
    ({"name": ["shop"]}, "name"),
])
def test_a_string_parameter_takes_only_a_json_string(drf_api, body, param):
    # DRF's CharField turned 0 into "0": schemathesis' negative data, accepted.
    response = drf_api.post("/api/v1/sellers", body, format="json")
    _error(response, 400, "parameter_invalid", param)


def test_a_nested_string_parameter_takes_only_a_json_string(drf_api):
    body = {"buyer": {"reference": 42}, "payment_method": "pm_card_visa",
            "orders": [{"seller": "sel_x", "amount": 1000, "currency": "usd"}]}
    response = drf_api.post("/api/v1/checkouts", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    _error(response, 400, "parameter_invalid", "buyer.reference")


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_documents_its_errors_in_the_error_shape(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        for status in ("400", "401", "429", "500"):
            assert responses[status]["content"]["application/json"]["schema"] == error, (path, method, status)
        assert "Retry-After" in responses["429"]["headers"], (path, method)
        if "{" in path:
            assert "404" in responses, (path, method)
        if method == "post":
            assert {"409", "413", "415", "422"} <= set(responses), (path, method)
            assert "Idempotent-Replayed" in responses["201"]["headers"], (path, method)
            key = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
            assert key["in"] == "header"
            assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)


def test_lists_document_the_pagination_envelope_and_parameters(schema):
    for path in ("/api/v1/sellers", "/api/v1/checkouts"):
        operation = schema["paths"][path]["get"]
        params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
        assert params["cursor"]["schema"]["type"] == "string"
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        envelope = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(envelope["properties"]) == {"next", "previous", "results"}
        assert envelope["properties"]["results"]["type"] == "array"


def test_inputs_document_the_constraints_the_server_enforces(schema):
    components = schema["components"]["schemas"]
    checkout = components["CheckoutInputRequest"]
    assert (checkout["properties"]["orders"]["minItems"], checkout["properties"]["orders"]["maxItems"]) == (1, 50)
    assert checkout["properties"]["payment_method"]["pattern"] == r"^pm_[A-Za-z0-9_]{1,96}$"
    order = components["OrderInputRequest"]["properties"]
    assert (order["amount"]["minimum"], order["amount"]["maximum"]) == (1, 99_999_999)
    currencies = components["CurrencyEnum"]["enum"]
    assert {"usd", "USD", "jpy", "eur"} <= set(currencies) and "xyz" not in currencies
    assert order["seller"]["maxLength"] == 40
    for name in ("CheckoutInputRequest", "OrderInputRequest", "BuyerInputRequest", "SellerInputRequest",
                 "RefundInputRequest"):
        assert components[name]["additionalProperties"] is False, name
