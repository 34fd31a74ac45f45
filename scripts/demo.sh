#!/usr/bin/env bash
# The demo: start the stack, make an operator and an API key, run checkouts through the HTTP API.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "Starting the stack (PSP sandbox, web, Celery worker, beat):"
# Money out in the demo: captured money available at once, and a payout in transit asked about after 5 s
# (scripts/demo_payout.py).
export PAYOUT_HOLD_DAYS=${PAYOUT_HOLD_DAYS:-0} PAYOUT_IN_TRANSIT_CHECK_SECONDS=${PAYOUT_IN_TRANSIT_CHECK_SECONDS:-5}
bash scripts/stack.sh start
password=$(.venv/bin/python manage.py create_operator admin --superuser)
api_key=$(.venv/bin/python manage.py create_api_key "demo storefront" 2>/dev/null)
# The demo shop (storefront/, served by the same web process at /shop/): its own key, its sellers onboarded and
# its webhook endpoint registered through the API, as any merchant of ours.
shop_key=$(.venv/bin/python manage.py create_api_key "demo shop" 2>/dev/null)
.venv/bin/python manage.py storefront_setup "http://$WEB_HOST:$WEB_PORT" "$shop_key"
echo
DEMO_API_KEY=$api_key .venv/bin/python scripts/demo.py "http://$WEB_HOST:$WEB_PORT"
echo
echo "Money out: a seller paid out to their bank through the PSP (a transfer to their connected account, then a payout):"
DEMO_API_KEY=$api_key .venv/bin/python scripts/demo_payout.py "http://$WEB_HOST:$WEB_PORT"
# A dispute opened and won (scripts/demo_disputes.py); the day's settlement below carries its two lines.
DEMO_API_KEY=$api_key .venv/bin/python scripts/demo_disputes.py "http://$WEB_HOST:$WEB_PORT"

day=$(date -u +%F)
inbox=$(pwd)/var/settlement-inbox
mkdir -p "$inbox"
echo
echo "The PSP settles the day ($day): a Stripe payout reconciliation report (with the transfers to connected"
echo "accounts), the bank's camt.053 and the connected accounts' payouts report, into $inbox"
mapfile -t files < <(.venv/bin/python - "$PSP_API_BASE" "$day" "$inbox" <<'PY'
import sys, httpx
base, day, inbox = sys.argv[1:]
answer = httpx.post(f"{base}/_sandbox/settlements", json={"date": day, "directory": inbox}, timeout=30)
answer.raise_for_status()
for key in ("settlement_report", "bank_statement", "connected_payouts_report"):
    print(answer.json()[key])
PY
)
for file in "${files[@]}"; do .venv/bin/python manage.py import_settlement "$file"; done
.venv/bin/python manage.py reconcile --date "$day"
echo "The seller's payout in the PSP's files, matched to our payout (the platform's payout to us is net of it):"
.venv/bin/python - "${files[0]}" "${files[2]}" <<'PY'
import csv, sys
for path in sys.argv[1:]:
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("connected_account"):
                print(f"  {path.rsplit('/', 1)[1]}: {row['reporting_category']} {row['source_id']} {row['net']} "
                      f"{row['currency'].upper()} (connected account {row['connected_account']})")
PY
echo
.venv/bin/python manage.py audit_money
cat <<MSG

Where to look:
  admin        http://$WEB_HOST:$WEB_PORT/admin/   user: admin   password: $password
               (Payments > Payment orders: filter by state; Ledger > Ledger transactions; Wallets;
                Reconciliation > Reconciliation runs and Breaks)
  demo shop    http://$WEB_HOST:$WEB_PORT/shop/   (Buy opens the hosted payment page; card 4242 4242 4242 4242,
               3-D Secure 4000 0027 6000 3184, declined 4000 0000 0000 0002; any future expiry, any CVC)
  API docs     http://$WEB_HOST:$WEB_PORT/api/docs/
  PSP sandbox  $PSP_API_BASE/_sandbox/charges
  logs         var/log/{web,worker1..N,beat,psp}.log
The stack keeps running; 'make stop' stops it.
MSG
