#!/usr/bin/env bash
# Repeatable run for the figure "GET /api/v1/conversations p99 at 100,000 conversations" (README,
# "Performance"; issue 14): builds release, starts `palisade sim` and `palisade serve` on a
# throw-away SQLite data directory, and runs `palisade-bench conversations-list`: it seeds one
# tenant with BENCH_CONVERSATIONS (default 100,000) conversations and two other tenants with
# BENCH_NOISE_CONVERSATIONS (20,000) each, through the signed webhook endpoint (one or two
# inbound messages per conversation, activity spread over 30 days), works a tenth of them
# (labels, assignee, status) through PATCH, then reads each filter's first page and a page
# half-way through its rows BENCH_SAMPLES (300) times, one request at a time. Target: p99 ≤ 20 ms.
#
#   bench/conversations-list.sh
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres bench/conversations-list.sh
#                       # then again on a fresh PostgreSQL database it creates (and drops)
#
# Rate limits are off: every request comes from one address.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PORT="${BENCH_PORT:-18284}"
SIM_PORT="${BENCH_SIM_PORT:-18291}"
CONVERSATIONS="${BENCH_CONVERSATIONS:-100000}"
NOISE="${BENCH_NOISE_CONVERSATIONS:-20000}"
SAMPLES="${BENCH_SAMPLES:-300}"
BASE="http://127.0.0.1:${PORT}"
SIM="http://127.0.0.1:${SIM_PORT}"
WORK="$(mktemp -d)"
PG_ADMIN_URL="${BENCH_POSTGRES_URL:-}"
PG_DB=""

stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  stop_server
  if [ -n "${SIM_PID:-}" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --locked -p palisade -p palisade-bench >/dev/null 2>&1 ||
  cargo build --release --locked -p palisade -p palisade-bench
BIN="$ROOT/target/release/palisade"
BENCH="$ROOT/target/release/palisade-bench"

for url in "$BASE/healthz" "$SIM/_sim/config"; do
  if curl -fsS "$url" >/dev/null 2>&1; then
    echo "something already answers $url; pick other ports with BENCH_PORT / BENCH_SIM_PORT" >&2
    exit 1
  fi
done
"$BIN" sim --listen "127.0.0.1:${SIM_PORT}" --auto-status off >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 50); do curl -fsS "$SIM/_sim/config" >/dev/null 2>&1 && break; sleep 0.2; done

# run LABEL DATA_DIR [DATABASE_URL]
run() {
  local label="$1" dir="$2" url="${3:-}"
  mkdir -p "$dir"
  (cd "$WORK" && exec env PALISADE_LISTEN="127.0.0.1:${PORT}" PALISADE_DATA_DIR="$dir" \
    ${url:+PALISADE_DATABASE_URL="$url"} \
    PALISADE_WHATSAPP_GRAPH_BASE_URL="$SIM" \
    PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE=0 \
    PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 PALISADE_LOG=warn \
    "$BIN" serve) >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$WORK/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "== $label (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BENCH" conversations-list --server "$BASE" --sim "$SIM" --conversations "$CONVERSATIONS" \
    --noise-conversations "$NOISE" --samples "$SAMPLES"
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
}

run SQLite "$WORK/sqlite"
if [ -n "$PG_ADMIN_URL" ]; then
  PG_DB="palisade_bench_list_$$"
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$PG_ADMIN_URL" "$PG_DB")
  run PostgreSQL "$WORK/pg" "$PG_URL"
fi
