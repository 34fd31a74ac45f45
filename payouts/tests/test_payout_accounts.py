"""Payout accounts through the HTTP API against the real PSP sandbox: only PSP ids and last4 kept."""
import pytest

from core.tests import loopback
from payouts.models import PayoutAccount, PayoutAccountChange

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def onboard(api, name="seller"):
    response = api.post("/api/v1/sellers", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def set_account(api, seller, key, **body):
    body = {"external_account": "btok_us_verified", "country": "US", **body}
    return api.post(f"/api/v1/sellers/{seller}/payout-account", json=body, headers={"Idempotency-Key": key})


def psp_account(sandbox, account_id):
    response = loopback.get(f"{sandbox}/v1/accounts/{account_id}", headers={"Authorization": "Bearer sk_test_x"})
    assert response.status_code == 200, response.text
    return response.json()


def test_open_replace_and_replay(api, sandbox):
    seller = onboard(api)
    assert api.get(f"/api/v1/sellers/{seller}/payout-account").status_code == 404

    opened = set_account(api, seller, "pa-1", email="seller@example.com")
    assert opened.status_code == 201, opened.text
    body = opened.json()
    assert body["object"] == "payout_account" and body["seller"] == seller
    assert body["psp_account"].startswith("acct_")
    assert body["bank_account"]["last4"] == "6789" and body["bank_account"]["currency"] == "usd"
    at_psp = psp_account(sandbox, body["psp_account"])  # the PSP's own record
    assert at_psp["metadata"] == {"seller_id": seller}
    assert [b["id"] for b in at_psp["external_accounts"]["data"]] == [body["bank_account"]["id"]]

    replayed = set_account(api, seller, "pa-1", email="seller@example.com")
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == body
    other_body = set_account(api, seller, "pa-1", email="other@example.com")
    assert other_body.status_code == 422 and other_body.json()["error"]["code"] == "idempotency_key_reused"
    assert len(psp_account(sandbox, body["psp_account"])["external_accounts"]["data"]) == 1  # PSP not asked

    replaced = set_account(api, seller, "pa-3", external_account="btok_gb", country="GB")
    assert replaced.status_code == 200, replaced.text
    new = replaced.json()
    assert new["psp_account"] == body["psp_account"] and new["id"] == body["id"]
    assert (new["bank_account"]["last4"], new["bank_account"]["currency"]) == ("2345", "gbp")
    assert api.get(f"/api/v1/sellers/{seller}/payout-account").json() == new

    account = PayoutAccount.objects.get(seller_id=seller)
    assert (account.bank_last4, account.currency, account.psp_bank_account_id) == \
        ("2345", "gbp", new["bank_account"]["id"])
    changes = list(PayoutAccountChange.objects.filter(account=account).values_list(
        "from_bank_account", "to_bank_account", "actor"))
    assert changes == [("", body["bank_account"]["id"], changes[0][2]),
                       (body["bank_account"]["id"], new["bank_account"]["id"], changes[0][2])]
    assert changes[0][2].startswith("api_client:cli_")


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    ({"external_account": "btok_us_verified", "country": "US", "account_number": "000123456789"}, 400,
     "bank_account_number_refused", None),
    ({"external_account": "000123456789", "country": "US"}, 400, "bank_account_number_refused", "external_account"),
    ({"external_account": "DE89370400440532013000", "country": "DE"}, 400, "bank_account_number_refused",
     "external_account"),
    ({"external_account": "pm_card_visa", "country": "US"}, 400, "not_token", "external_account"),
    ({"external_account": "btok_nope", "country": "US"}, 400, "bank_account_refused", "external_account"),
    ({"external_account": "btok_us_verified", "country": "USA"}, 400, "max_length", "country"),
    ({"external_account": "btok_us_verified"}, 400, "parameter_required", "country"),
    ({"external_account": 5, "country": "US"}, 400, "parameter_invalid", "external_account"),
])
def test_bad_input_is_a_clear_4xx(api, sandbox, body, status, code, param):
    seller = onboard(api)
    response = api.post(f"/api/v1/sellers/{seller}/payout-account", json=body, headers={"Idempotency-Key": "k"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert "000123456789" not in response.text and "0532013000" not in response.text
    assert not PayoutAccount.objects.filter(seller_id=seller).exists()


def test_unknown_or_foreign_seller_and_missing_key(api, sandbox, live_server):
    from core.services import api_client_create

    _, other_key = api_client_create(name="other shop")
    with loopback.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {other_key}"}) as other:
        foreign = other.post("/api/v1/sellers", json={"name": "not yours"}).json()["id"]
    for seller in (foreign, "sel_nope"):
        response = set_account(api, seller, f"k-{seller}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
    seller = onboard(api)
    missing_key = api.post(f"/api/v1/sellers/{seller}/payout-account",
                           json={"external_account": "btok_us_verified", "country": "US"})
    assert missing_key.status_code == 400, missing_key.text
    assert not PayoutAccount.objects.exists()
