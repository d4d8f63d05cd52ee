#!/usr/bin/env bash
# Repeatable run for the figure "another tenant's writes while passwords hash" (README,
# "Performance"; issue 11 item 3): builds release, starts `palisade serve` on a throw-away SQLite
# data directory, and runs `palisade-bench password-writes`: tenant A's owner keeps 20
# wrong-password changes (`POST /api/v1/auth/password`, each an argon2 verification) in flight
# while tenant B's owner creates contacts one at a time; B's latency is printed alone first, then
# under the changes. Target: B's p99 ≤ 50 ms.
#
#   bench/password-writes.sh        # BENCH_SECONDS (default 30) of load, BENCH_CHANGERS (20)
#
# Rate limits are off: every request comes from one address and one user each.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${BENCH_PORT:-18283}"
SECONDS_UNDER_LOAD="${BENCH_SECONDS:-30}"
CHANGERS="${BENCH_CHANGERS:-20}"
WORK="$(mktemp -d)"
cleanup() {
  if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is in use; set BENCH_PORT" >&2
  exit 1
fi

cargo build --release --locked -p palisade -p palisade-bench

env PALISADE_LISTEN="127.0.0.1:$PORT" PALISADE_DATA_DIR="$WORK/data" \
  PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE=0 \
  PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 PALISADE_LOG=warn \
  target/release/palisade serve &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/palisade-bench password-writes --server "http://127.0.0.1:$PORT" \
  --changers "$CHANGERS" --duration "$SECONDS_UNDER_LOAD"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
