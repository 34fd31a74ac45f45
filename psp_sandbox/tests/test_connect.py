"""Connect in the sandbox, driven by the official SDK: accounts, transfers, payouts and their webhooks."""

from __future__ import annotations

import uuid

import pytest
import stripe

from psp_sandbox.tests.test_sandbox import _Receiver, sb_call, wait_for


def _account(client: stripe.StripeClient, token: str = "btok_us_verified") -> stripe.Account:
    return client.v1.accounts.create(
        params={"type": "custom", "country": "US", "external_account": token,
                "capabilities": {"transfers": {"requested": True}}, "metadata": {"seller_id": "sel_1"}},
        options={"idempotency_key": uuid.uuid4().hex},
    )


def _fund(client: stripe.StripeClient, account: str, amount: int, group: str = "") -> stripe.Transfer:
    params = {"amount": amount, "currency": "usd", "destination": account, "metadata": {"payout_id": group or "x"}}
    if group:
        params["transfer_group"] = group
    return client.v1.transfers.create(params=params, options={"idempotency_key": uuid.uuid4().hex})


def _payout(client: stripe.StripeClient, account: stripe.Account, amount: int, key: str | None = None
            ) -> stripe.Payout:
    bank = account.external_accounts.data[0].id
    return client.v1.payouts.create(
        params={"amount": amount, "currency": "usd", "destination": bank, "metadata": {"payout_id": "pyt_1"}},
        options={"idempotency_key": key or uuid.uuid4().hex, "stripe_account": account.id},
    )


def test_account_keeps_last4_only_and_replays(url: str, client: stripe.StripeClient) -> None:
    key = uuid.uuid4().hex
    params = {"type": "custom", "country": "US", "external_account": "btok_us_verified"}
    first = client.v1.accounts.create(params=params, options={"idempotency_key": key})
    again = client.v1.accounts.create(params=params, options={"idempotency_key": key})
    assert first.id == again.id and first.id.startswith("acct_")
    bank = first.external_accounts.data[0]
    assert (bank.last4, bank.currency, bank.object, first.payouts_enabled) == ("6789", "usd", "bank_account", True)
    assert client.v1.accounts.retrieve(first.id).external_accounts.data[0].id == bank.id
    gb = client.v1.accounts.external_accounts.create(first.id, params={"external_account": "btok_gb"})
    assert (gb.currency, gb.last4, gb.default_for_currency) == ("gbp", "2345", True)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.accounts.create(params={"country": "US", "external_account": "btok_nope"})
    assert refused.value.param == "external_account" and refused.value.code == "resource_missing"


def test_transfer_then_payout_paid_later_with_connect_webhook(url: str, client: stripe.StripeClient) -> None:
    receiver = _Receiver()
    try:
        endpoint = client.v1.webhook_endpoints.create(
            params={"url": receiver.url, "enabled_events": ["*"], "connect": True})
        assert endpoint.secret.startswith("whsec_")
        account = _account(client)
        transfer = _fund(client, account.id, 5000, group="pyt_1")
        assert client.v1.transfers.list(params={"destination": account.id, "transfer_group": "pyt_1"}).data[0].id \
            == transfer.id
        with pytest.raises(stripe.InvalidRequestError) as short:
            _payout(client, account, 6000)
        assert short.value.code == "balance_insufficient"
        payout = _payout(client, account, 5000)
        assert payout.status == "pending" and payout.arrival_date > payout.created
        paid = wait_for(lambda: [e for body, sig in receiver.received
                                 if (e := stripe.Webhook.construct_event(body, sig, endpoint.secret)).type
                                 == "payout.paid"], timeout=10)
        assert paid[0].account == account.id and paid[0].data.object.id == payout.id
        assert client.v1.payouts.retrieve(payout.id).status == "paid"
        listed = client.v1.payouts.list(params={"destination": payout.destination})
        assert [p.id for p in listed.data] == [payout.id]
        # Platform events do not go to the Connect endpoint.
        assert "transfer.created" not in {stripe.Webhook.construct_event(b, s, endpoint.secret).type
                                          for b, s in receiver.received}
    finally:
        receiver.close()


def test_payout_to_a_closed_account_fails_and_funds_come_back(url: str, client: stripe.StripeClient) -> None:
    account = _account(client, "btok_us_verified_accountClosed")
    transfer = _fund(client, account.id, 3000)
    payout = _payout(client, account, 3000)
    failed = wait_for(lambda: (p := client.v1.payouts.retrieve(payout.id)).status == "failed" and p, timeout=10)
    assert failed.failure_code == "account_closed"
    reversal = client.v1.transfers.reversals.create(transfer.id, params={"amount": 3000})
    assert reversal.amount == 3000 and client.v1.transfers.retrieve(transfer.id).reversed is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})


def test_payout_faults_as_for_charges(url: str, client: stripe.StripeClient) -> None:
    account = _account(client, "btok_sandbox_server_error")
    _fund_key = uuid.uuid4().hex
    with pytest.raises(stripe.APIError):  # the transfer to that account: a 500 saved against the key
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": account.id},
                                   options={"idempotency_key": _fund_key})
    flaky = _account(client, "btok_sandbox_flaky")
    sb_call(url, "/_sandbox/config", {"flaky_failures": 1})
    key = uuid.uuid4().hex
    with pytest.raises(stripe.APIError):
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": flaky.id},
                                   options={"idempotency_key": key})
    transfer = client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": flaky.id},
                                          options={"idempotency_key": key})
    assert transfer.amount == 100
    assert sb_call(url, "/_sandbox/charges")["faults"] == {"error": 1, "transient": 1}


def test_the_sandbox_reports_its_transfers_and_payouts(url: str, client: stripe.StripeClient) -> None:
    account = _account(client)
    transfer = _fund(client, account.id, 2000, group="pyt_7")
    payout = _payout(client, account, 1500)
    wait_for(lambda: client.v1.payouts.retrieve(payout.id).status == "paid", timeout=10)
    returned = sb_call(url, f"/_sandbox/payouts/{payout.id}/return", {"failure_code": "no_account"})
    assert (returned["status"], returned["failure_code"]) == ("failed", "no_account")
    record = sb_call(url, "/_sandbox/payouts")
    assert [transfer.id, "pyt_7", account.id, 2000, 0] in record["transfers"]
    assert [payout.id, "pyt_1", account.id, 1500, "failed"] in record["payouts"]
    assert record["paid"].get("usd", 0) == sum(p[3] for p in record["payouts"] if p[4] == "paid")
