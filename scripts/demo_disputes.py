"""The demo's dispute: a buyer pays with Stripe's dispute test card, their bank disputes the charge, the seller's
money (and the dispute fee) is taken; the evidence is submitted, the bank decides for the seller, the money comes
back. Through the HTTP API and the PSP sandbox only."""
from __future__ import annotations

import os
import sys
import time
import uuid

import httpx

PSP_AUTH = {"Authorization": "Bearer sk_test_sandbox"}


def _wait(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.3)
    sys.exit(f"{what} did not happen within {timeout:.0f} s; see var/log/")


def _balance(api: httpx.Client, seller: str, currency: str) -> int:
    body = api.get(f"/api/v1/sellers/{seller}/balance").json()
    return sum(a["amount"] for bucket in ("available", "pending", "reserved") for a in body[bucket]
               if a["currency"] == currency)


def dispute_demo(api: httpx.Client, psp_base: str, run: str | None = None) -> dict:
    """Run the dispute story; return the won dispute as the API shows it."""
    run = run or uuid.uuid4().hex[:6]
    seller = api.post("/api/v1/sellers", json={"name": "Di's Deli", "external_reference": f"di-{run}"}).json()["id"]
    body = {"buyer": {"reference": f"buyer-{run}", "email": "buyer@example.com"},
            "payment_method": "pm_card_createDispute",
            "orders": [{"seller": seller, "amount": 6000, "currency": "usd"}]}
    event = api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": f"demo-dispute-{run}"}).json()["id"]
    checkout = _wait("the checkout", lambda: (c := api.get(f"/api/v1/checkouts/{event}").json())["state"]
                     != "processing" and c)
    order = checkout["orders"][0]
    print(f"\nDisputes: {order['id']} of Di's Deli, 60.00 USD with the dispute test card -> {order['state']}")
    before = _balance(api, seller, "usd")
    dispute = _wait("the dispute", lambda: next(iter(api.get(f"/api/v1/sellers/{seller}/disputes").json()[
        "results"]), None))
    print(f"  the buyer's bank disputed it: {dispute['id']} ({dispute['psp_dispute']}), {dispute['state']}, "
          f"{dispute['amount']} + fee {dispute['fee']} {dispute['currency']} taken from the seller "
          f"(balance {before} -> {_balance(api, seller, 'usd')} minor units), "
          f"evidence due {dispute['evidence_due_by']}")
    submitted = httpx.post(f"{psp_base}/v1/disputes/{dispute['psp_dispute']}", headers=PSP_AUTH, timeout=30,
                           data={"evidence[uncategorized_text]": "Delivered 2 days after purchase, signed for.",
                                 "submit": "true"})
    submitted.raise_for_status()
    _wait("under review", lambda: api.get(f"/api/v1/disputes/{dispute['id']}").json()["state"] == "under_review")
    print("  evidence submitted at the PSP -> under_review")
    httpx.post(f"{psp_base}/_sandbox/disputes/{dispute['psp_dispute']}/outcome", json={"outcome": "won"},
               timeout=30).raise_for_status()
    won = _wait("the win", lambda: (d := api.get(f"/api/v1/disputes/{dispute['id']}").json())["state"] == "won"
                and d)
    print(f"  the bank decided for the seller -> {won['state']}: amount and fee given back "
          f"(balance {_balance(api, seller, 'usd')} minor units)")
    return won


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {os.environ['DEMO_API_KEY']}"},
                      timeout=30) as client:
        dispute_demo(client, os.environ["PSP_API_BASE"])
