"""A checkout's sellers are checked by the statement that writes it (payments.services.checkout_write): a seller
that is unknown, another client's or suspended is refused with the very error the query of its own gave
(``checkout_orders_validate``, which the hosted page's sessions still use), nothing is written or published, and
the idempotency key is released: the same key with a good body then succeeds, and is recorded."""
import json

import pytest
from rest_framework.test import APIClient

from core.models import IdempotencyRecord
from core.services import api_client_create
from payments import services
from payments.exceptions import SellerNotOnboarded
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition, Seller
from payments.services.checkout import checkout_orders_validate
from payments.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    client, key = api_client_create(name="shop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client, api


def _refused_seller(how: str, client) -> str:
    if how == "unknown":
        return "sel_nobody"
    if how == "too_long":
        return "sel_" + "x" * 36  # 40 characters, the column's limit: unknown all the same
    if how == "another_clients":
        return SellerFactory().id
    return SellerFactory(client=client, status=Seller.Status.SUSPENDED).id


def _post(api, sellers: list[str], key: str = "k-1"):
    body = {"buyer": {"reference": "buyer-1"}, "payment_method": "pm_card_visa",
            "orders": [{"seller": s, "amount": 1000 + i, "currency": "usd"} for i, s in enumerate(sellers)]}
    return api.generic("POST", "/api/v1/checkouts", json.dumps(body), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY=key)


def _nothing_written() -> bool:
    return not (PaymentEvent.objects.exists() or PaymentOrder.objects.exists()
                or PaymentOrderTransition.objects.exists())


@pytest.mark.parametrize("how", ["unknown", "too_long", "another_clients", "suspended"])
@pytest.mark.parametrize("refused_at", [0, 1, 2])
def test_a_refused_seller_gets_the_same_error_and_nothing_is_written(shop, how, refused_at,
                                                                      django_capture_on_commit_callbacks):
    client, api = shop
    sellers = [SellerFactory(client=client).id for _ in range(3)]
    sellers[refused_at] = _refused_seller(how, client)
    with django_capture_on_commit_callbacks(execute=False) as published:
        response = _post(api, sellers)
    assert response.status_code == 400, response.content
    assert response.json() == {"error": {
        "type": "invalid_request_error", "code": "seller_not_onboarded",
        "message": f"Seller {sellers[refused_at]!r} is not onboarded.", "param": f"orders[{refused_at}].seller"}}
    with pytest.raises(SellerNotOnboarded) as by_query:  # the query of its own says the same
        checkout_orders_validate(client=client, orders=[services.OrderSpec(s, 1000, "usd") for s in sellers])
    assert (by_query.value.message, by_query.value.param) == (response.json()["error"]["message"],
                                                              response.json()["error"]["param"])
    assert _nothing_written() and not published
    assert not IdempotencyRecord.objects.filter(key="k-1").exists()  # released

    sellers[refused_at] = SellerFactory(client=client).id  # the same key, a good body: runs, and is recorded
    assert _post(api, sellers).status_code == 201
    assert PaymentOrder.objects.count() == 3
    assert IdempotencyRecord.objects.get(key="k-1").response_status == 201


def test_the_first_refused_order_is_named(shop):
    client, api = shop
    good = SellerFactory(client=client).id
    response = _post(api, [good, "sel_second", SellerFactory().id])
    assert response.json()["error"]["param"] == "orders[1].seller"
    assert "'sel_second'" in response.json()["error"]["message"]
    assert _nothing_written()


def test_an_amount_the_psp_refuses_is_named_before_a_refused_seller(shop):
    """As before: the PSP's amount rules are checked first, then the sellers."""
    client, api = shop
    body = {"buyer": {"reference": "buyer-1"}, "payment_method": "pm_card_visa",
            "orders": [{"seller": "sel_nobody", "amount": 1000, "currency": "usd"},
                       {"seller": SellerFactory(client=client).id, "amount": 10, "currency": "usd"}]}
    response = api.generic("POST", "/api/v1/checkouts", json.dumps(body), content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("amount_too_small",
                                                                                     "orders[1].amount")
    assert _nothing_written()
