"""A refund that succeeded and fails later (the buyer's bank sends it back), as Stripe does it:
``POST /_sandbox/refunds/{id}/fail``."""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import stripe

from psp_sandbox.tests.test_sandbox import _Receiver, create, sb_call, wait_for


def fail(url: str, refund_id: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"{url}/_sandbox/refunds/{refund_id}/fail", data=json.dumps(body or {}).encode(),
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_succeeded_refund_fails_later(url: str, client: stripe.StripeClient, receiver: _Receiver,
                                        tmp_path: Path) -> None:
    sb_call(url, "/_sandbox/config", {"webhook_url": receiver.url})
    pi = create(client, amount=1000)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 400,
                                              "metadata": {"refund_id": "rf_ours"}}, options={"idempotency_key": "r1"})
    assert refund.status == "succeeded"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    held = sb_call(url, f"/_sandbox/balance?paid_out_through={yesterday}")["currencies"]["usd"]["platform"]

    status, body = fail(url, refund.id, {"failure_reason": "lost_or_stolen_card"})

    assert status == 200, body
    assert (body["status"], body["failure_reason"]) == ("failed", "lost_or_stolen_card")
    assert body["failure_balance_transaction"].startswith("txn_")
    got = client.v1.refunds.retrieve(refund.id)
    assert (got.status, got.failure_reason) == ("failed", "lost_or_stolen_card")
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0  # refundable again
    events = wait_for(lambda: {"refund.updated", "refund.failed"} <= {e.type for e in receiver.events()}
                      and receiver.events())
    for kind in ("refund.updated", "refund.failed"):
        obj = next(e for e in events if e.type == kind).data.object
        assert (obj.id, obj.status, obj.failure_reason, obj.metadata["refund_id"]) == (
            refund.id, "failed", "lost_or_stolen_card", "rf_ours")
    # The money is back on the platform's balance, and no longer counted as refunded.
    assert sb_call(url, f"/_sandbox/balance?paid_out_through={yesterday}")["currencies"]["usd"]["platform"] == \
        held + 400
    assert sb_call(url, "/_sandbox/charges")["totals"]["usd"]["refunded"] == 0

    # The day's settlement: the refund (it did succeed) and its failure, the money back.
    files = sb_call(url, "/_sandbox/settlements", {"date": datetime.now(UTC).date().isoformat(),
                                                   "directory": str(tmp_path)})
    rows = list(csv.DictReader(open(files["settlement_report"])))
    by_category = {r["reporting_category"]: r for r in rows}
    assert (by_category["refund"]["source_id"], by_category["refund"]["gross"]) == (refund.id, "-4.00")
    failure = by_category["refund_failure"]
    assert (failure["source_id"], failure["gross"], failure["net"], failure["fee"]) == (refund.id, "4.00", "4.00",
                                                                                        "0.00")
    assert (failure["payment_intent_id"], failure["balance_transaction_id"]) == (pi.id, body[
        "failure_balance_transaction"])
    charge = by_category["charge"]
    assert files["payouts"] == [{"id": charge["automatic_payout_id"], "currency": "usd",
                                 "amount": int(charge["net"].replace(".", ""))}]  # the refund and its failure net 0

    # Once: a failed refund cannot fail again; a pending or unknown one is refused.
    assert fail(url, refund.id)[0] == 400
    assert fail(url, "re_missing")[0] == 404
    assert fail(url, refund.id, {"failure_reason": "bored"})[0] == 400
    assert len([e for e in receiver.events() if e.type == "refund.failed"]) == 1
