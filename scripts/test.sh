#!/usr/bin/env bash
# The whole suite on SQLite and, side by side with it, again on PostgreSQL when a server
# answers (the tests that touch no database run on the SQLite leg only; see
# tests/conftest.py). SKD_TEST_SERIAL=1 runs the legs one after the other.
# Under CI (CI=true) a missing PostgreSQL, Redis or Chromium is a failure, not a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export HF_HUB_OFFLINE=1
CI="${CI:-}"
is_ci() { [[ "$CI" == "true" || "$CI" == "1" ]]; }

PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/skd}"
REDIS="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
# The PostgreSQL leg's broker: its own database, since broker tests empty theirs.
REDIS_PG="${TEST_REDIS_URL_POSTGRES:-${REDIS%/*}/14}"

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

redis_ok=""
if "$BIN/python" -c "import redis,sys; redis.Redis.from_url('$REDIS', socket_connect_timeout=2).ping()" 2>/dev/null; then
  redis_ok=1
  export CELERY_BROKER_URL="$REDIS"
elif is_ci; then
  echo "FAIL: Redis at $REDIS is not reachable (required under CI)." >&2
  exit 1
else
  echo "NOTE: Redis at $REDIS is not reachable; the broker tests will be skipped."
fi

"$BIN/ruff" check . || exit 1
# The apps' layers (pyproject.toml [tool.importlinter]): no import runs upward.
"$BIN/lint-imports" --no-cache || exit 1

pg_ok=""
if "$BIN/python" -c "import psycopg; psycopg.connect('${PG_URL%/*}/postgres', connect_timeout=3).close()" 2>/dev/null; then
  pg_ok=1
elif is_ci; then
  echo "FAIL: PostgreSQL at $PG_URL is not reachable (required under CI)." >&2
else
  echo "NOTE: PostgreSQL at $PG_URL is not reachable; the PostgreSQL leg is skipped."
fi

postgres_leg() {
  # Its own folder for files and its own broker database, so the legs never meet.
  local broker=()
  [[ -n "$redis_ok" ]] && broker=("CELERY_BROKER_URL=$REDIS_PG")
  env DATABASE_URL="$PG_URL" SKD_VAR_DIR="${SKD_VAR_DIR:-var}/test-postgres" "${broker[@]}" \
    "$BIN/pytest" -m "not e2e" --durations=20 "$@"
}

pg_rc=0
pg_log="${SKD_VAR_DIR:-var}/test-postgres.log"
if [[ -n "$pg_ok" && -z "${SKD_TEST_SERIAL:-}" ]]; then
  mkdir -p "$(dirname "$pg_log")"
  echo "=== Test suite on PostgreSQL ($PG_URL), in the background: $pg_log ==="
  postgres_leg "$@" >"$pg_log" 2>&1 &
  pg_pid=$!
fi

echo "=== Test suite on SQLite ==="
# Tests marked one_leg run on the PostgreSQL leg when there is one (tests/conftest.py).
leg_env=()
[[ -n "$pg_ok" ]] && leg_env=("SKD_POSTGRES_LEG_RUNS=1")
env -u DATABASE_URL "${leg_env[@]}" "$BIN/pytest" --durations=20 "$@"
sqlite_rc=$?

if [[ -n "$pg_ok" ]]; then
  if [[ -n "${pg_pid:-}" ]]; then
    wait "$pg_pid"
    pg_rc=$?
    echo "=== Test suite on PostgreSQL ($PG_URL) ==="
    cat "$pg_log"
  else
    echo "=== Test suite on PostgreSQL ($PG_URL) ==="
    postgres_leg "$@"
    pg_rc=$?
  fi
elif is_ci; then
  pg_rc=1
fi
[[ $sqlite_rc == 0 && $pg_rc == 0 ]]
