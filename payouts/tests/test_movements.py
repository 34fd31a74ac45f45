"""The seller's movements through the HTTP API: every change of the balance, newest first, cursor-paginated,
naming the order, refund or payout behind it; a real worker and PSP sandbox."""
from datetime import date

import pytest

from conftest import wait_for
from core.services import api_client_create
from core.tests import loopback
from payments.services.postings import capture_posting_key, refund_posting_key
from payouts.models import PayoutState
from payouts.selectors import movement_source
from payouts.services import payout_posting_key, payouts_run
from payouts.tests.helpers import age_holds, capture, onboard, payout_account, wait_state


@pytest.mark.parametrize(("key", "source"), [
    (capture_posting_key("po_1"), ("order", "po_1")),
    (refund_posting_key("re_1"), ("refund", "re_1")),
    (payout_posting_key("pyt_1", "created"), ("payout", "pyt_1")),
    (payout_posting_key("pyt_1", "returned"), ("payout", "pyt_1")),
    ("dispute:dp_1:opened", ("dispute", "dp_1")),
    ("k1", ("adjustment", None)),
])
def test_the_source_is_read_from_the_key_its_owner_posted_under(key, source):
    assert movement_source(key) == source


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_movements_name_what_is_behind_them_newest_first(api, sandbox, live_server):
    seller = onboard(api)
    payout_account(api, seller)
    order = capture(api, seller, 5000)
    age_holds(seller)
    payout = payouts_run(payout_date=date(2026, 12, 1), actor="test").items.get().payout
    wait_state(payout.id, PayoutState.IN_TRANSIT, PayoutState.PAID)
    refund = api.post(f"/api/v1/payment-orders/{order}/refunds", json={"amount": 2000, "reason": "returned"},
                      headers={"Idempotency-Key": "rf-1"})
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    wait_for(lambda: api.get(f"/api/v1/refunds/{refund_id}").json()["state"] == "succeeded", message="the refund")

    first = api.get(f"/api/v1/sellers/{seller}/movements", params={"limit": 2})
    assert first.status_code == 200, first.text
    lines = first.json()["results"]
    assert [(m["amount"], m["currency"], m["source"]) for m in lines] == [
        (-2000, "usd", {"type": "refund", "id": refund_id}),
        (-5000, "usd", {"type": "payout", "id": payout.id})]
    assert lines[0]["object"] == "balance_movement" and lines[0]["pending_until"] is None
    rest = api.get(first.json()["next"]).json()
    assert [(m["amount"], m["source"]) for m in rest["results"]] == [(5000, {"type": "order", "id": order})]
    assert rest["results"][0]["pending_until"] is not None and rest["next"] is None
    assert sum(m["amount"] for m in lines + rest["results"]) == -2000  # the balance: owed

    bad_cursor = api.get(f"/api/v1/sellers/{seller}/movements", params={"cursor": "cD1ub3RhZGF0ZQ=="})
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["code"] == "invalid_cursor"
    bad_limit = api.get(f"/api/v1/sellers/{seller}/movements", params={"limit": 0})
    assert bad_limit.status_code == 400 and bad_limit.json()["error"]["param"] == "limit"
    missing = api.get("/api/v1/sellers/sel_nope/movements")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    _, other_key = api_client_create(name="other shop")
    with loopback.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {other_key}"}) as other:
        hidden = other.get(f"/api/v1/sellers/{seller}/movements")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "resource_missing"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_seller_without_movements_has_an_empty_list(api):
    seller = onboard(api)
    response = api.get(f"/api/v1/sellers/{seller}/movements")
    assert response.status_code == 200, response.text
    assert response.json() == {"next": None, "previous": None, "results": []}
