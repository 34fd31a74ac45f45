"""A seller's balance through the HTTP API: captures pending in their hold, refunds from available,
any past moment, against the ledger; a real worker and PSP sandbox."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from ledger import accounts
from ledger import selectors as ledger_selectors
from payouts.tests.helpers import capture, onboard

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def balance(api, seller, **params):
    response = api.get(f"/api/v1/sellers/{seller}/balance", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return {name: {a["currency"]: a["amount"] for a in body[name]} for name in ("available", "pending", "reserved")}


def test_balance_pending_then_refunded_and_as_of(api, sandbox):
    seller = onboard(api)
    before = timezone.now()
    assert balance(api, seller) == {"available": {}, "pending": {}, "reserved": {}}
    order = capture(api, seller, 1250, key="co-1")
    capture(api, seller, 700, currency="eur", key="co-2")
    after_capture = timezone.now()
    assert balance(api, seller) == {"available": {"eur": 0, "usd": 0}, "pending": {"eur": 700, "usd": 1250},
                                    "reserved": {"eur": 0, "usd": 0}}
    payable = -ledger_selectors.account_balance(code=accounts.seller_payable(seller), currency="usd")
    assert payable == 1250  # the buckets split the ledger's payable

    refund = api.post(f"/api/v1/payment-orders/{order}/refunds", json={"amount": 300, "reason": "damaged"},
                      headers={"Idempotency-Key": "rf-1"})
    assert refund.status_code == 201, refund.text
    wait_for(lambda: api.get(f"/api/v1/refunds/{refund.json()['id']}").json()["state"] == "succeeded",
             message="the refund")
    now = balance(api, seller)
    assert now["available"]["usd"] == -300 and now["pending"]["usd"] == 1250  # owed back from the next payouts
    assert -ledger_selectors.account_balance(code=accounts.seller_payable(seller), currency="usd") == 950

    assert balance(api, seller, as_of=after_capture.isoformat())["available"] == {"eur": 0, "usd": 0}
    assert balance(api, seller, as_of=before.isoformat()) == {"available": {}, "pending": {}, "reserved": {}}
    response = api.get(f"/api/v1/sellers/{seller}/balance", params={"as_of": after_capture.isoformat()})
    assert response.json()["object"] == "balance" and response.json()["as_of"] is not None
    call_command("audit_money")


@pytest.mark.parametrize(("params", "code", "param"), [
    ({"as_of": "yesterday"}, "parameter_invalid", "as_of"),
    ({"as_of": (timezone.now() + timedelta(days=1)).isoformat()}, "parameter_invalid", "as_of"),
    ({"currency": "usd"}, "parameter_unknown", "currency"),
])
def test_bad_balance_queries_are_400(api, sandbox, params, code, param):
    seller = onboard(api)
    response = api.get(f"/api/v1/sellers/{seller}/balance", params=params)
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)


def test_balance_of_an_unknown_seller_is_404(api, sandbox):
    response = api.get("/api/v1/sellers/sel_nope/balance")
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
