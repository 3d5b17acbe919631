#!/usr/bin/env bash
# The whole suite on SQLite, then again on PostgreSQL when a server answers.
# Under CI (CI=true) a missing PostgreSQL, Redis or Chromium is a failure, not a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export HF_HUB_OFFLINE=1
CI="${CI:-}"
is_ci() { [[ "$CI" == "true" || "$CI" == "1" ]]; }

PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/skd}"
REDIS="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

# Chromium for the browser tests, from Debian's packages.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium and chromium-driver for the browser tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "Could not install chromium."
  fi
fi
if command -v chromium >/dev/null; then
  export SKD_CHROMIUM=$(command -v chromium)
elif is_ci; then
  echo "FAIL: chromium is missing and could not be installed (required under CI)." >&2
  exit 1
else
  echo "NOTE: chromium is not installed and cannot be installed here; browser tests will be skipped."
fi

if "$BIN/python" -c "import redis,sys; redis.Redis.from_url('$REDIS', socket_connect_timeout=2).ping()" 2>/dev/null; then
  export CELERY_BROKER_URL="$REDIS"
elif is_ci; then
  echo "FAIL: Redis at $REDIS is not reachable (required under CI)." >&2
  exit 1
else
  echo "NOTE: Redis at $REDIS is not reachable; the broker tests will be skipped."
fi

"$BIN/ruff" check . || exit 1

echo "=== Test suite on SQLite ==="
env -u DATABASE_URL "$BIN/pytest" "$@"
sqlite_rc=$?

if "$BIN/python" -c "import psycopg; psycopg.connect('${PG_URL%/*}/postgres', connect_timeout=3).close()" 2>/dev/null; then
  echo "=== Test suite on PostgreSQL ($PG_URL) ==="
  DATABASE_URL="$PG_URL" "$BIN/pytest" -m "not e2e" "$@"
  pg_rc=$?
elif is_ci; then
  echo "FAIL: PostgreSQL at $PG_URL is not reachable (required under CI)." >&2
  pg_rc=1
else
  echo "NOTE: PostgreSQL at $PG_URL is not reachable; the PostgreSQL leg was skipped."
  pg_rc=0
fi
[[ $sqlite_rc == 0 && $pg_rc == 0 ]]
