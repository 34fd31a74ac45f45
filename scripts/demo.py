"""A few multi-seller checkouts through the real HTTP API, one of them declined."""
import os
import sys
import time
import uuid

import httpx

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
api = httpx.Client(base_url=BASE, headers={"Authorization": f"Bearer {os.environ['DEMO_API_KEY']}"}, timeout=30)
run = uuid.uuid4().hex[:6]
# No sandbox reset here: `make demo` starts from an empty database and an empty sandbox together
# (scripts/stack.sh reset), so the two agree; resetting only the sandbox would leave our books holding
# charges the PSP no longer knows.


def post(path, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    response = api.post(path, json=body, headers=headers)
    if response.status_code >= 400:
        sys.exit(f"{path} answered {response.status_code}: {response.text}")
    return response


sellers = {name: post("/api/v1/sellers", {"name": name, "external_reference": f"{name}-{run}"}).json()["id"]
           for name in ("Ada's Ceramics", "Bo's Bikes", "Cy's Coffee")}
print("Onboarded sellers: " + ", ".join(f"{name} ({sid})" for name, sid in sellers.items()))
ada, bo, cy = sellers.values()

checkouts = [
    ("three sellers, two currencies", "pm_card_visa",
     [(ada, 4500, "usd"), (bo, 12999, "usd"), (cy, 2500, "eur")]),
    ("two sellers", "pm_card_mastercard", [(ada, 1999, "usd"), (cy, 850, "eur")]),
    ("declined card", "pm_card_chargeDeclined", [(bo, 30000, "usd"), (cy, 1200, "eur")]),
]
events = []
for label, payment_method, orders in checkouts:
    key = f"demo-{run}-{len(events)}"
    body = {"buyer": {"reference": f"buyer-{run}", "email": "buyer@example.com"}, "payment_method": payment_method,
            "orders": [{"seller": s, "amount": a, "currency": c} for s, a, c in orders]}
    response = post("/api/v1/checkouts", body, key=key)
    events.append((label, response.json()["id"]))
    print(f"POST /api/v1/checkouts ({label}, {payment_method}) -> {response.status_code} {response.json()['id']}")
    if len(events) == 1:
        replay = post("/api/v1/checkouts", body, key=key)
        print(f"  same Idempotency-Key again -> {replay.status_code} {replay.json()['id']} "
              f"(Idempotent-Replayed: {replay.headers.get('Idempotent-Replayed')}; no second payment)")

deadline = time.monotonic() + 60
final = {}
while time.monotonic() < deadline:
    final = {eid: api.get(f"/api/v1/checkouts/{eid}").json() for _, eid in events}
    if all(o["state"] in ("succeeded", "failed") for e in final.values() for o in e["orders"]):
        break
    time.sleep(0.3)

names = {sid: name for name, sid in sellers.items()}
print("\nWhat happened (the Celery worker executed each payment order against the PSP sandbox):")
for label, eid in events:
    print(f"  {eid}  {label}")
    for o in final[eid]["orders"]:
        outcome = o["psp_reference"] if o["state"] == "succeeded" else f"{o['failure_code']} {o['psp_reference']}"
        print(f"    {o['id']}  {names[o['seller']]:<15} {o['amount']:>7} {o['currency']}  {o['state']:<10} {outcome}")

credited = {}
for e in final.values():
    for o in e["orders"]:
        if o["state"] == "succeeded":
            credited[(names[o["seller"]], o["currency"])] = credited.get((names[o["seller"]], o["currency"]), 0) + o[
                "amount"]
print("\nCredited to wallets (and owed to sellers in the ledger):")
for (name, currency), amount in sorted(credited.items()):
    print(f"  {name:<15} {amount:>7} {currency}")
if any(o["state"] not in ("succeeded", "failed") for e in final.values() for o in e["orders"]):
    sys.exit("some orders did not finish within 60 s; see var/log/worker*.log")


def sandbox_vs_books() -> bool:
    """The PSP sandbox's own record (``/_sandbox/charges``: succeeded charges and refunds per currency) against
    our books (succeeded payment orders and refunds per currency, read from the database)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.db.models import Count, Sum

    from core.money import format_money
    from payments.models import PaymentOrder, Refund

    psp = httpx.get(f"{os.environ['PSP_API_BASE']}/_sandbox/charges", timeout=30).json()
    books: dict[str, dict[str, int]] = {}
    for row in PaymentOrder.objects.filter(state="succeeded").values("currency").annotate(n=Count("id"),
                                                                                            total=Sum("amount")):
        books.setdefault(row["currency"], {"captured": 0, "refunded": 0, "count": 0}).update(
            captured=row["total"], count=row["n"])
    for row in Refund.objects.filter(state="succeeded").values("currency").annotate(total=Sum("amount")):
        books.setdefault(row["currency"], {"captured": 0, "refunded": 0, "count": 0})["refunded"] = row["total"]
    print("\nSandbox vs books (the PSP's /_sandbox/charges against our succeeded orders and refunds):")
    agree = True
    for currency in sorted(set(books) | set(psp["totals"])):
        ours = books.get(currency, {"captured": 0, "refunded": 0, "count": 0})
        theirs = {k: psp["totals"].get(currency, {}).get(k, 0) for k in ("captured", "refunded", "count")}
        same = ours == theirs
        agree &= same
        print(f"  {currency.upper()}  charges {theirs['count']} vs {ours['count']}, captured "
              f"{format_money(theirs['captured'], currency)} vs {format_money(ours['captured'], currency)}, refunded "
              f"{format_money(theirs['refunded'], currency)} vs {format_money(ours['refunded'], currency)}"
              f"  {'agree' if same else 'DIFFER'}")
    doubles = len(psp["double_charges"])
    agree &= doubles == 0
    print(f"sandbox vs books: {'agree' if agree else 'DISAGREE'} ({len(set(books) | set(psp['totals']))} currencies,"
          f" {doubles} double charges)")
    return agree


if not sandbox_vs_books():
    sys.exit("the PSP sandbox and our books disagree")
