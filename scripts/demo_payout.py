"""The demo's money out: a seller with a payout account at the PSP sells, is paid out (``payouts_run``), and the
payout reaches the bank. The day's settlement then carries it: the transfer to the seller's connected account
netted off the PSP's payout to us, and the connected account's payout in the connected accounts' report.

The demo stack runs with ``PAYOUT_HOLD_DAYS=0`` (money available at once) and a short
``PAYOUT_IN_TRANSIT_CHECK_SECONDS``: the recovery round asks the PSP about the payout in transit, as it would
when a webhook is lost (the demo registers no Connect webhook endpoint).
"""
import os
import subprocess
import sys
import time
import uuid

import httpx

BASE = sys.argv[1]
api = httpx.Client(base_url=BASE, headers={"Authorization": f"Bearer {os.environ['DEMO_API_KEY']}"}, timeout=30)
run = uuid.uuid4().hex[:6]


def call(method, path, body=None, key=None):
    response = api.request(method, path, json=body, headers={"Idempotency-Key": key} if key else {})
    if response.status_code >= 400:
        sys.exit(f"{method} {path} answered {response.status_code}: {response.text}")
    return response.json()


def wait(what, check, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(1)
    sys.exit(f"timed out waiting for {what}")


seller = call("POST", "/api/v1/sellers", {"name": "Di's Deli", "external_reference": f"deli-{run}"})["id"]
account = call("POST", f"/api/v1/sellers/{seller}/payout-account",
               {"external_account": "btok_us_verified", "country": "US"}, key=f"demo-pa-{run}")
print(f"Seller Di's Deli ({seller}) has a payout account: connected account {account['psp_account']}, "
      f"bank ••{account['bank_account']['last4']}")
checkout = call("POST", "/api/v1/checkouts", {
    "buyer": {"reference": f"buyer-{run}"}, "payment_method": "pm_card_visa",
    "orders": [{"seller": seller, "amount": 6400, "currency": "usd"}]}, key=f"demo-deli-{run}")
wait("the checkout", lambda: call("GET", f"/api/v1/checkouts/{checkout['id']}")["state"] == "succeeded")
print("A buyer paid Di's Deli 64.00 USD; the balance:", call("GET", f"/api/v1/sellers/{seller}/balance"))
subprocess.run([sys.executable, "manage.py", "payouts_run"], check=True)


def paid():
    payouts = call("GET", f"/api/v1/sellers/{seller}/payouts")["results"]
    return payouts[0] if payouts and payouts[0]["state"] == "paid" else None


payout = wait("the payout to be paid", paid)
print(f"Payout {payout['id']} of {payout['amount']} {payout['currency'].upper()} paid to the bank as "
      f"{payout['psp_payout']} (arrival {payout['arrival_date']})")
