"""Shared steps of the payout tests: sellers with payout accounts and captured money, through the real API,
worker and PSP sandbox."""
from __future__ import annotations

from django.db import connection
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from payouts.models import Payout

PSP_AUTH = {"Authorization": "Bearer sk_test_sandbox"}


def onboard(api, name="seller"):
    response = api.post("/api/v1/sellers", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def payout_account(api, seller, token="btok_us_verified", country="US"):
    response = api.post(f"/api/v1/sellers/{seller}/payout-account",
                        json={"external_account": token, "country": country},
                        headers={"Idempotency-Key": f"pa-{seller}-{token}"})
    assert response.status_code in (200, 201), response.text
    return response.json()


def capture(api, seller, amount, currency="usd", key=None):
    key = key or f"co-{seller}-{amount}-{currency}"
    body = {"buyer": {"reference": "buyer-1"}, "payment_method": "pm_card_visa",
            "orders": [{"seller": seller, "amount": amount, "currency": currency}]}
    response = api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": key})
    assert response.status_code == 201, response.text
    event = response.json()["id"]
    done = wait_for(lambda: (b := api.get(f"/api/v1/checkouts/{event}").json())["state"] != "processing" and b,
                    message="the checkout")
    assert done["state"] == "succeeded", done
    return done["orders"][0]["id"]


def age_holds(*seller_ids):
    """As if the hold had passed: the sellers' credits still held become available now (those released
    before keep their moment, so balances as of a past moment stay what they were). Past the wallet's
    append-only trigger, as only the database superuser can (a test's time machine)."""
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        try:
            cur.execute("UPDATE wallet_walletmovement m SET hold_until = now() - interval '1 second',"
                        " reserve_until = now() - interval '1 second' FROM wallet_wallet w"
                        " WHERE w.id = m.wallet_id AND w.owner_id = ANY(%s) AND m.reserve_until > now()",
                        [list(seller_ids)])
        finally:
            cur.execute("SET session_replication_role = origin")


def connect_webhooks(sandbox, live_server, settings):
    """The Connect endpoint at the sandbox, pointing at our /webhooks/psp/connect, and its secret ours."""
    response = loopback.post(f"{sandbox}/v1/webhook_endpoints", headers=PSP_AUTH, data={
        "url": f"{live_server.url}/webhooks/psp/connect", "enabled_events[]": "*", "connect": "true"})
    assert response.status_code == 200, response.text
    settings.PSP_CONNECT_WEBHOOK_SECRET = response.json()["secret"]
    return response.json()


def sandbox_config(sandbox, **config):
    loopback.post(f"{sandbox}/_sandbox/config", json=config, timeout=5).raise_for_status()


def psp_payouts(sandbox, bank_account):
    response = loopback.get(f"{sandbox}/v1/payouts", params={"destination": bank_account, "limit": 100},
                            headers=PSP_AUTH)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def psp_transfers(sandbox, account):
    response = loopback.get(f"{sandbox}/v1/transfers", params={"destination": account, "limit": 100}, headers=PSP_AUTH)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def wait_state(payout_id, *states, timeout=30):
    return wait_for(lambda: (p := Payout.objects.get(pk=payout_id)).state in states and p, timeout=timeout,
                    message=f"payout {payout_id} to be {'/'.join(states)}")


def make_due(payout_id):
    Payout.objects.filter(pk=payout_id).update(next_action_at=timezone.now())
