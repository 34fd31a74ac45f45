#!/usr/bin/env bash
# Start or stop the stack in the background: PSP sandbox, web (gunicorn), Celery worker and beat;
# `reset` (run by `make demo`) stops it and empties our database and the sandbox's storage together.
# Logs go to var/log/NAME.log, pids to var/run/NAME.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/log var/run

start_one() {
  local name=$1; shift
  if [[ -f var/run/$name.pid ]] && kill -0 "$(cat var/run/$name.pid)" 2>/dev/null; then
    echo "  $name already running (pid $(cat var/run/$name.pid))"; return
  fi
  setsid "$@" >"var/log/$name.log" 2>&1 < /dev/null &
  echo $! > "var/run/$name.pid"
  echo "  $name started (pid $!, log var/log/$name.log)"
}

wait_http() {
  local url=$1 what=$2
  for _ in $(seq 1 100); do
    if .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "$what did not answer at $url; see var/log/" >&2; exit 1
}

case "${1:-}" in
  start)
    start_one psp .venv/bin/python -m psp_sandbox
    start_one web .venv/bin/gunicorn config.wsgi --bind "$WEB_HOST:$WEB_PORT" --workers "${WEB_WORKERS:-3}" \
      --access-logfile - --graceful-timeout 20
    # One worker process per core: a Python process holds one core at most (the GIL).
    for i in $(seq 1 "${WORKER_PROCESSES:-$(nproc)}"); do
      start_one "worker$i" .venv/bin/celery -A config worker -l info --pool threads -c "${WORKER_CONCURRENCY:-100}" \
        -n "worker$i@%h"
    done
    start_one beat .venv/bin/celery -A config beat -l info --schedule var/celerybeat-schedule
    wait_http "$PSP_API_BASE/_sandbox/health" "PSP sandbox"
    wait_http "http://$WEB_HOST:$WEB_PORT/health" "web server"
    ;;
  stop)
    for pidfile in var/run/*.pid; do
      [[ -e $pidfile ]] || continue
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then  # still there after 20 s: no port may stay taken
          kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "  stopped $(basename "$pidfile" .pid) (pid $pid)"
      fi
      rm -f "$pidfile"
    done
    ;;
  reset)
    # `make demo` runs from nothing every time: our database and the PSP sandbox's storage are reset together,
    # so the books never hold a charge the sandbox has forgotten (nor the other way round).
    bash "$0" stop
    sandbox_db=${PSP_SANDBOX_DB:-var/psp_sandbox.sqlite3}
    rm -f "$sandbox_db" "$sandbox_db-wal" "$sandbox_db-shm" var/celerybeat-schedule*
    echo "  removed the PSP sandbox's storage ($sandbox_db)"
    .venv/bin/python - <<'PY'
import os, sys

import environ
import psycopg
from psycopg import sql

url = os.environ.get("DATABASE_OWNER_URL") or os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marketplace")
config = environ.Env.db_url_config(url)
name = config["NAME"]
if name != "marketplace" and os.environ.get("DEMO_RESET_DATABASE") != name:
    sys.exit(f"refusing to drop {name!r}: only the demo database 'marketplace' is reset (DEMO_RESET_DATABASE={name} to allow)")
params = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"],
          "password": config["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
with psycopg.connect(**params) as conn:
    try:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.errors.ObjectInUse:
        sys.exit(f"database {name!r} is in use by another session (a `make run`? a shell?): stop it and run again")
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
print(f"  dropped and recreated the database {name!r} (every earlier demo's sellers, orders and ledger)")
PY
    # Tasks queued by an earlier run name orders that no longer exist.
    .venv/bin/celery -A config purge -f >/dev/null && echo "  purged the Celery queue ($CELERY_BROKER_URL)"
    ;;
  *) echo "usage: $0 start|stop|reset" >&2; exit 2 ;;
esac
