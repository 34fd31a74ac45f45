"""A merchant learns a refund's outcome through the API alone."""
import pytest

from conftest import wait_for
from core.services import api_client_create
from core.tests import loopback
from payments.tests.test_psp_faults import one_order, wait_state

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_refunds_can_be_read_back_by_id_by_order_and_on_the_order(api, sandbox, live_server):
    order = wait_state(one_order(api, amount=1000), "succeeded")
    created = [api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": amount, "reason": "returned"},
                        headers={"Idempotency-Key": f"r{amount}"}).json() for amount in (300, 200)]
    assert [r["state"] for r in created] == ["pending", "pending"]

    def succeeded():
        return all(api.get(f"/api/v1/refunds/{r['id']}").json()["state"] == "succeeded" for r in created)

    wait_for(succeeded, message="both refunds to succeed")
    one = api.get(f"/api/v1/refunds/{created[0]['id']}").json()
    assert one["object"] == "refund" and one["amount"] == 300 and one["psp_reference"].startswith("re_")

    listed = api.get(f"/api/v1/payment-orders/{order.id}/refunds", params={"limit": 1}).json()
    assert [r["id"] for r in listed["results"]] == [created[1]["id"]] and listed["next"]
    second_page = api.get(listed["next"]).json()
    assert [r["id"] for r in second_page["results"]] == [created[0]["id"]]

    detail = api.get(f"/api/v1/payment-orders/{order.id}").json()
    assert detail["amount_refunded"] == 500
    assert sorted(r["amount"] for r in detail["refunds"]) == [200, 300]

    # Another client sees none of it.
    _, other_key = api_client_create(name="other shop")
    with loopback.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {other_key}"}) as other:
        assert other.get(f"/api/v1/refunds/{created[0]['id']}").status_code == 404
        missing = other.get(f"/api/v1/payment-orders/{order.id}/refunds")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
