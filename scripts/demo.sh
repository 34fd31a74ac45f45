#!/usr/bin/env bash
# The demo: start the stack, make an operator and an API key, run checkouts through the HTTP API.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "Starting the stack (PSP sandbox, web, Celery worker, beat):"
bash scripts/stack.sh start
password=$(.venv/bin/python manage.py create_operator admin --superuser)
api_key=$(.venv/bin/python manage.py create_api_key "demo storefront" 2>/dev/null)
echo
DEMO_API_KEY=$api_key .venv/bin/python scripts/demo.py "http://$WEB_HOST:$WEB_PORT"
echo
.venv/bin/python manage.py audit_money
cat <<MSG

Where to look:
  admin        http://$WEB_HOST:$WEB_PORT/admin/   user: admin   password: $password
               (Payments > Payment orders: filter by state; Ledger > Ledger transactions; Wallets)
  API docs     http://$WEB_HOST:$WEB_PORT/api/docs/
  PSP sandbox  $PSP_API_BASE/_sandbox/charges
  logs         var/log/{web,worker,beat,psp}.log
The stack keeps running; 'make stop' stops it.
MSG
