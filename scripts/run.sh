#!/usr/bin/env bash
# Start a Celery worker (with the periodic stale-job reaper) and the web server.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
VAR="${SKD_VAR_DIR:-var}"
mkdir -p "$VAR/log"
.venv/bin/celery -A config worker -B -l info --concurrency 2 -Q default,gpu \
  --schedule "$VAR/celerybeat-schedule" >"$VAR/log/worker.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
echo "Worker started (pid $worker, log: $VAR/log/worker.log)."
echo "Open http://$HOST:$PORT/ and log in with a demo login above."
.venv/bin/python manage.py runserver "$HOST:$PORT" --noreload
