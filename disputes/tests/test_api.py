"""GET /api/v1/disputes/{id} and /api/v1/sellers/{id}/disputes: a client sees its own sellers' disputes only."""
import pytest

from core.services import api_client_create
from disputes import services
from payments.tests.factories import SellerFactory

from .helpers import captured_order, report

pytestmark = pytest.mark.django_db


def test_a_client_sees_its_sellers_disputes_only(client):
    owner, key = api_client_create(name="shop")
    _, other_key = api_client_create(name="someone else")
    seller = SellerFactory(client=owner)
    captured_order(10_000, psp_reference="pi_1", seller=seller, payment_event__client=owner)
    dispute, _ = services.dispute_report_apply(report=report("dp_1", psp_payment_reference="pi_1"), actor="t")
    kept, _ = services.dispute_report_apply(report=report("dp_2", psp_payment_reference="pi_nobody"), actor="t")
    mine, theirs = {"HTTP_AUTHORIZATION": f"Bearer {key}"}, {"HTTP_AUTHORIZATION": f"Bearer {other_key}"}
    body = client.get(f"/api/v1/disputes/{dispute.pk}", **mine).json()
    assert (body["object"], body["state"], body["amount"], body["fee"], body["seller"], body["psp_dispute"]) == (
        "dispute", "needs_response", 10_000, 1500, seller.pk, "dp_1")
    assert body["withdrawn"] and body["reinstated"] is None and body["problem"] == ""
    listed = client.get(f"/api/v1/sellers/{seller.pk}/disputes", **mine).json()
    assert [d["id"] for d in listed["results"]] == [dispute.pk]
    missing = client.get(f"/api/v1/disputes/{dispute.pk}", **theirs)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    assert client.get(f"/api/v1/disputes/{kept.pk}", **mine).status_code == 404
    assert client.get(f"/api/v1/sellers/{seller.pk}/disputes", **theirs).status_code == 404
