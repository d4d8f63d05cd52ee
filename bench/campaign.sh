#!/usr/bin/env bash
# Repeatable run for the figure "a 10,000-recipient campaign completes at the configured pace
# ±10% with the inbox reply p99 ≤ 1 s meanwhile" (README, "Performance"; issue 16).
#
#   bench/campaign.sh                       # SQLite: builds release, runs, prints a summary
#   BENCH_RATE=20 BENCH_RECIPIENTS=2000 bench/campaign.sh
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres bench/campaign.sh
#                                           # then again on a fresh PostgreSQL database it
#                                           # creates (and drops)
#   BENCH_BIN=target/release/palisade bench/campaign.sh   # an existing build (palisade-bench
#                                           # is taken from the same folder, or BENCH_TOOL; the
#                                           # simulator from BENCH_SIM_BIN if set: it must stamp
#                                           # its outbound sends, `at_ms`)
#
# Starts `palisade sim` (status webhooks on, as Meta sends them) and `palisade serve` with
# PALISADE_CAMPAIGN_MESSAGES_PER_SECOND=BENCH_RATE (default 80: 10,000 take about 2 minutes),
# everything else at its default (the sender polls every second), and runs `palisade-bench
# campaign`: BENCH_RECIPIENTS (10,000) opted-in contacts created through the API, 20 customers
# who wrote first, the campaign started, and an agent's reply every BENCH_REPLY_MS (200) round
# those 20 conversations until the simulator has received the campaign. The pace is measured
# from the simulator's stamps (first to last send, and per 10 s window); a reply's latency from
# its POST to the simulator's stamp of that send.
#
# Rate limits are off: every request comes from one address.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

PORT="${BENCH_PORT:-18285}"
SIM_PORT="${BENCH_SIM_PORT:-18292}"
RATE="${BENCH_RATE:-80}"
RECIPIENTS="${BENCH_RECIPIENTS:-10000}"
REPLY_MS="${BENCH_REPLY_MS:-200}"
SERVER_ENV=(PALISADE_CAMPAIGN_MESSAGES_PER_SECOND="$RATE")

bench_build
SIM_BIN="${BENCH_SIM_BIN:-$BIN}"

# run LABEL DATA_DIR [DATABASE_URL]
run() {
  local label="$1" dir="$2" url="${3:-}"
  # A fresh simulator per run: its outbound record is the measurement.
  bench_start_sim "$SIM_PORT"
  SERVER_LOG="$WORK/server-$label.log"
  bench_start_server "$PORT" "$dir" "$url"
  echo "== $label, $(date -u +%FT%TZ) (load average before: $(bench_load))"
  "$BENCH" campaign --server "$BASE" --sim "$SIM" --recipients "$RECIPIENTS" --rate "$RATE" \
    --reply-every-ms "$REPLY_MS" || echo "  (campaign exited with status $?)"
  echo "   (load average after: $(bench_load))"
  if grep -qiE "warn|error" "$WORK/server-$label.log"; then
    echo "   server warnings: $(grep -ciE "warn|error" "$WORK/server-$label.log"); the first:"
    grep -iE "warn|error" "$WORK/server-$label.log" | head -n 3 | cut -c1-300 | sed 's/^/     /'
  fi
  bench_stop_server
  bench_stop_sim
}

run sqlite "$WORK/sqlite"

if [ -n "$PG_ADMIN_URL" ]; then
  bench_pg_database "palisade_bench_$$"
  run postgres "$WORK/postgres" "$PG_URL"
fi
