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

. bench/lib.sh

PORT="${BENCH_PORT:-18283}"
SECONDS_UNDER_LOAD="${BENCH_SECONDS:-30}"
CHANGERS="${BENCH_CHANGERS:-20}"

bench_build
bench_start_server "$PORT" "$WORK/data"

echo "load average before: $(bench_load)"
"$BENCH" password-writes --server "$BASE" \
  --changers "$CHANGERS" --duration "$SECONDS_UNDER_LOAD"
echo "load average after: $(bench_load)"
