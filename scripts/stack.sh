#!/usr/bin/env bash
# Start or stop the stack in the background: PSP sandbox, web (gunicorn), Celery worker and beat.
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
    start_one worker .venv/bin/celery -A config worker -l info --pool threads -c "${WORKER_CONCURRENCY:-100}" -n "worker@%h"
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
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
