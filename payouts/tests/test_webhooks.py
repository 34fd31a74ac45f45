"""POST /webhooks/psp/connect: signed with the Connect endpoint's secret, stored once, never a 500 for bad
input, and a payout event for no payout of ours moves nothing."""
import hashlib
import hmac
import json
import time

import pytest

from payouts.models import PayoutWebhookEvent

pytestmark = pytest.mark.django_db
SECRET = "whsec_connect_test"
URL = "/webhooks/psp/connect"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.PSP_CONNECT_WEBHOOK_SECRET = SECRET


def signed(body: str, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    return f"t={at},v1={hmac.new(secret.encode(), f'{at}.{body}'.encode(), hashlib.sha256).hexdigest()}"


def deliver(client, event, **kwargs):
    body = event if isinstance(event, str) else json.dumps(event)
    return client.post(URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed(body, **kwargs))


def payout_event(event_id="evt_1", payout_id="pyt_unknown"):
    return {"id": event_id, "object": "event", "type": "payout.paid", "account": "acct_1",
            "data": {"object": {"id": "po_1", "object": "payout", "amount": 100, "currency": "usd",
                                "status": "paid", "metadata": {"payout_id": payout_id}}}}


def test_a_payout_event_for_no_payout_of_ours_is_stored_and_ignored(client):
    first = deliver(client, payout_event())
    again = deliver(client, payout_event())
    assert first.status_code == 200 and first.json() == {"received": True, "id": "evt_1", "duplicate": False,
                                                         "status": "ignored"}
    assert again.json()["duplicate"] is True
    stored = PayoutWebhookEvent.objects.get()
    assert (stored.status, stored.deliveries, stored.psp_account_id) == ("ignored", 2, "acct_1")


@pytest.mark.parametrize("tamper", ["secret", "stale", "future"])
def test_forged_stale_or_future_signatures_are_400(client, tamper):
    body = json.dumps(payout_event())
    header = {"secret": signed(body, secret="whsec_wrong"), "stale": signed(body, at=int(time.time()) - 3600),
              "future": signed(body, at=int(time.time()) + 3600)}[tamper]
    response = client.post(URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    assert not PayoutWebhookEvent.objects.exists()


def test_without_a_connect_secret_nothing_is_accepted(client, settings):
    settings.PSP_CONNECT_WEBHOOK_SECRET = ""
    response = deliver(client, payout_event(), secret="")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"


@pytest.mark.parametrize(("event", "param"), [
    ("[]", None), ("5", None),
    ({**payout_event(), "id": ""}, "id"),
    ({**payout_event(), "type": 7}, "type"),
    ({**payout_event(), "data": {"object": "po_1"}}, "data.object"),
])
def test_signed_but_malformed_is_400(client, event, param):
    response = deliver(client, event)
    assert response.status_code == 400, response.content
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("malformed_event", param)


def test_other_methods_are_405(client):
    response = client.get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"
