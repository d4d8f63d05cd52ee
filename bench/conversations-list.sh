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
. bench/lib.sh

PORT="${BENCH_PORT:-18284}"
SIM_PORT="${BENCH_SIM_PORT:-18291}"
CONVERSATIONS="${BENCH_CONVERSATIONS:-100000}"
NOISE="${BENCH_NOISE_CONVERSATIONS:-20000}"
SAMPLES="${BENCH_SAMPLES:-300}"

bench_build
bench_start_sim "$SIM_PORT" --auto-status off

# run LABEL DATA_DIR [DATABASE_URL]
run() {
  local label="$1" dir="$2" url="${3:-}"
  bench_start_server "$PORT" "$dir" "$url"
  echo "== $label (load average before: $(bench_load))"
  "$BENCH" conversations-list --server "$BASE" --sim "$SIM" --conversations "$CONVERSATIONS" \
    --noise-conversations "$NOISE" --samples "$SAMPLES"
  echo "   load average after: $(bench_load)"
  bench_stop_server
}

run SQLite "$WORK/sqlite"
if [ -n "$PG_ADMIN_URL" ]; then
  bench_pg_database "palisade_bench_list_$$"
  run PostgreSQL "$WORK/pg" "$PG_URL"
fi
