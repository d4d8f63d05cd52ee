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
ROOT="$PWD"

PORT="${BENCH_PORT:-18285}"
SIM_PORT="${BENCH_SIM_PORT:-18292}"
RATE="${BENCH_RATE:-80}"
RECIPIENTS="${BENCH_RECIPIENTS:-10000}"
REPLY_MS="${BENCH_REPLY_MS:-200}"
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
stop_sim() {
  if [ -n "${SIM_PID:-}" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=""
  fi
}
cleanup() {
  stop_server
  stop_sim
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$(cd "$(dirname "$BENCH_BIN")" && pwd)/$(basename "$BENCH_BIN")"
  BENCH="${BENCH_TOOL:-$(dirname "$BIN")/palisade-bench}"
  SIM_BIN="${BENCH_SIM_BIN:-$BIN}"
else
  cargo build --release --locked -p palisade -p palisade-bench >/dev/null 2>&1 ||
    cargo build --release --locked -p palisade -p palisade-bench
  BIN="$ROOT/target/release/palisade"
  BENCH="$ROOT/target/release/palisade-bench"
  SIM_BIN="$BIN"
fi

for url in "$BASE/healthz" "$SIM/_sim/config"; do
  if curl -fsS "$url" >/dev/null 2>&1; then
    echo "something already answers $url; pick other ports with BENCH_PORT / BENCH_SIM_PORT" >&2
    exit 1
  fi
done

load() { cut -d' ' -f1-3 /proc/loadavg; }

# run LABEL DATA_DIR [DATABASE_URL]
run() {
  local label="$1" dir="$2" url="${3:-}"
  mkdir -p "$dir"
  # A fresh simulator per run: its outbound record is the measurement.
  "$SIM_BIN" sim --listen "127.0.0.1:${SIM_PORT}" >"$WORK/sim-$label.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 1 50); do curl -fsS "$SIM/_sim/config" >/dev/null 2>&1 && break; sleep 0.2; done
  (cd "$WORK" && exec env PALISADE_LISTEN="127.0.0.1:${PORT}" PALISADE_DATA_DIR="$dir" \
    ${url:+PALISADE_DATABASE_URL="$url"} \
    PALISADE_WHATSAPP_GRAPH_BASE_URL="$SIM" \
    PALISADE_CAMPAIGN_MESSAGES_PER_SECOND="$RATE" \
    PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE=0 \
    PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 PALISADE_LOG=warn \
    "$BIN" serve) >>"$WORK/server-$label.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$WORK/server-$label.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "== $label, $(date -u +%FT%TZ) (load average before: $(load))"
  "$BENCH" campaign --server "$BASE" --sim "$SIM" --recipients "$RECIPIENTS" --rate "$RATE" \
    --reply-every-ms "$REPLY_MS" || echo "  (campaign exited with status $?)"
  echo "   (load average after: $(load))"
  if grep -qiE "warn|error" "$WORK/server-$label.log"; then
    echo "   server warnings: $(grep -ciE "warn|error" "$WORK/server-$label.log"); the first:"
    grep -iE "warn|error" "$WORK/server-$label.log" | head -n 3 | cut -c1-300 | sed 's/^/     /'
  fi
  stop_server
  stop_sim
}

run sqlite "$WORK/sqlite"

if [ -n "$PG_ADMIN_URL" ]; then
  PG_DB="palisade_bench_$$"
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$PG_ADMIN_URL" "$PG_DB")
  run postgres "$WORK/postgres" "$PG_URL"
fi
