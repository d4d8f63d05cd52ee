#!/usr/bin/env bash
# The cost of the metrics instrumentation (see README, "Performance", and docs/operations.md):
# GET /api/v1/me throughput with metrics on must be at least 90% of the throughput with
# metrics off, measured in the same run.
#
#   bench/metrics-overhead.sh     # builds release, prints a summary
#   BENCH_BIN=target/release/palisade bench/metrics-overhead.sh   # an existing build
#
# Needs wrk (Debian: apt-get install -y wrk). Two servers from the same release binary run side
# by side on 127.0.0.1, each on a throw-away SQLite data directory: one without
# PALISADE_METRICS_LISTEN, one with it (scraped once a second during its runs, as a busy
# Prometheus would). They are measured in turns (off, on, off, on, …) so that drift in the
# machine's load falls on both alike; the figure is the ratio of the summed requests.
# Logging is at warn for both (the per-request info lines are a separate, optional cost:
# docs/operations.md says how to filter them).
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh

OFF_PORT="${BENCH_PORT:-18191}"
ON_PORT="$((OFF_PORT + 1))"
METRICS_PORT="$((OFF_PORT + 2))"
DURATION="${BENCH_DURATION:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
# Two servers at once, measured in turns (not bench_start_server's one).
bench_on_exit() { kill "${OFF_PID:-0}" "${ON_PID:-0}" "${SCRAPER_PID:-0}" 2>/dev/null || true; }

bench_need wrk
bench_build

start() { # port data-dir [extra env…]
  local port="$1" dir="$2"
  shift 2
  (cd "$WORK" && env PALISADE_LISTEN="127.0.0.1:${port}" PALISADE_DATA_DIR="$dir" \
    PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 \
    PALISADE_LOG=warn "$@" "$BIN" serve) &
}
start "$OFF_PORT" "$WORK/off"
OFF_PID=$!
start "$ON_PORT" "$WORK/on" PALISADE_METRICS_LISTEN="127.0.0.1:${METRICS_PORT}"
ON_PID=$!

token() { # base-url
  for _ in $(seq 1 100); do curl -fsS "$1/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS -X POST "$1/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"tenant_name":"Bench Co","name":"Bench User","email":"bench@bench.example","password":"correct-orbit-lantern-quietly"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
OFF_TOKEN=$(token "http://127.0.0.1:${OFF_PORT}")
ON_TOKEN=$(token "http://127.0.0.1:${ON_PORT}")
curl -fsS "http://127.0.0.1:${METRICS_PORT}/metrics" | grep -q '^palisade_http_requests_total' \
  || { echo "the metrics listener does not answer" >&2; exit 1; }

requests() { awk '/requests in/ {print $1}'; }
me() { # port token seconds
  wrk -t2 -c64 -d"$3s" -H "Authorization: Bearer $2" "http://127.0.0.1:$1/api/v1/me" | requests
}
me "$OFF_PORT" "$OFF_TOKEN" 3 >/dev/null   # warm-up
me "$ON_PORT" "$ON_TOKEN" 3 >/dev/null

OFF_TOTAL=0
ON_TOTAL=0
LINES=""
for round in $(seq 1 "$ROUNDS"); do
  off=$(me "$OFF_PORT" "$OFF_TOKEN" "$DURATION")
  (while :; do curl -fsS "http://127.0.0.1:${METRICS_PORT}/metrics" >/dev/null; sleep 1; done) &
  SCRAPER_PID=$!
  on=$(me "$ON_PORT" "$ON_TOKEN" "$DURATION")
  kill "$SCRAPER_PID" 2>/dev/null || true
  wait "$SCRAPER_PID" 2>/dev/null || true
  OFF_TOTAL=$((OFF_TOTAL + off))
  ON_TOTAL=$((ON_TOTAL + on))
  LINES="${LINES}  round ${round}: off $((off / DURATION)) req/s, on $((on / DURATION)) req/s
"
done

SECONDS_EACH=$((ROUNDS * DURATION))
RATIO=$(awk -v a="$ON_TOTAL" -v b="$OFF_TOTAL" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }')
SERIES=$(curl -fsS "http://127.0.0.1:${METRICS_PORT}/metrics" | grep -c '^palisade_')
cat <<SUMMARY
Palisade metrics overhead ($(nproc) cores, ${ROUNDS} rounds of ${DURATION}s each, release build, SQLite)
${LINES}  GET /api/v1/me, metrics off   $((OFF_TOTAL / SECONDS_EACH)) req/s
  GET /api/v1/me, metrics on    $((ON_TOTAL / SECONDS_EACH)) req/s  (${RATIO}% of off; target >= 90%)
  palisade_* samples exposed    ${SERIES}
SUMMARY
