#!/usr/bin/env bash
# Repeatable load run for the foundation's figures (see README, "Performance").
#
#   bench/auth-load.sh            # builds release, runs everything, prints a summary
#
# Needs wrk and hey (Debian: apt-get install -y wrk hey). Everything runs on 127.0.0.1 against
# a throw-away data directory; nothing else is touched. Figures measured:
#   1. GET /healthz and GET /api/v1/me (Bearer) throughput with wrk, and their ratio;
#   2. GET /api/v1/me latency at a fixed 1,000 requests/s (hey, p99);
#   3. GET /api/v1/me p99 at 1,000 requests/s while 200 concurrent wrong-password logins run;
#   4. the server's resident memory when idle;
#   5. GET /api/v1/tenant with an API key against the same request with a JWT (integrations
#      issue: the key's throughput must be at least 80% of the JWT's).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

PORT="${BENCH_PORT:-18181}"
DURATION="${BENCH_DURATION:-10}"
# The lockout out of the way as well as the rate limits: we measure the server, not its
# throttles (with them on, a single-address flood is refused before any hashing, which is
# cheaper still).
SERVER_ENV=(PALISADE_LOCKOUT_THRESHOLD=1000000000 PALISADE_LOGIN_FAILURE_DELAY_MS=0)

bench_need wrk hey
bench_build
bench_start_server "$PORT" "$WORK/data"

TOKEN=$(curl -fsS -X POST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"tenant_name":"Bench Co","name":"Bench User","email":"bench@bench.example","password":"correct-orbit-lantern-quietly"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

sleep 1
RSS_IDLE_KB=$(ps -o rss= -p "$SERVER_PID" | tr -d ' ')

rps() { awk '/Requests\/sec/ {print int($2)}'; }
wrk -t2 -c64 -d3s "$BASE/healthz" >/dev/null   # warm-up
HEALTH_RPS=$(wrk -t2 -c64 -d"${DURATION}s" "$BASE/healthz" | rps)
ME_RPS=$(wrk -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me" | rps)

p99() { awk '/99% in/ {printf "%.2f", $3 * 1000}'; }
ME_P99=$(hey -z "${DURATION}s" -c 10 -q 100 -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me" | p99)

# 200 concurrent wrong-password logins, while /me is measured at 1,000 requests/s.
hey -z "$((DURATION + 4))s" -c 200 -m POST -T application/json \
  -d '{"email":"bench@bench.example","password":"wrong-password-for-load"}' "$BASE/api/v1/auth/login" \
  > "$WORK/flood.txt" &
FLOOD_PID=$!
sleep 2
ME_P99_FLOOD=$(hey -z "${DURATION}s" -c 10 -q 100 -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me" | p99)
wait "$FLOOD_PID" || true
FLOOD_CODES=$(awk '/Status code distribution/ {f=1; next} f && /\[/ {printf "%s ", $0}' "$WORK/flood.txt")

KEY=$(curl -fsS -X POST "$BASE/api/v1/api-keys" -H 'content-type: application/json' -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"bench","scopes":["read_only"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
TENANT_JWT_RPS=$(wrk -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/tenant" | rps)
TENANT_KEY_RPS=$(wrk -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $KEY" "$BASE/api/v1/tenant" | rps)
KEY_RATIO=$(awk -v a="$TENANT_KEY_RPS" -v b="$TENANT_JWT_RPS" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')
# CPU time per request on $(nproc) cores, key minus JWT: what key authentication adds.
KEY_EXTRA_US=$(awk -v a="$TENANT_KEY_RPS" -v b="$TENANT_JWT_RPS" -v c="$(nproc)" 'BEGIN { printf "%.1f", (a > 0 && b > 0 ? c * 1e6 * (1 / a - 1 / b) : 0) }')

RATIO=$(awk -v a="$ME_RPS" -v b="$HEALTH_RPS" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')
cat <<SUMMARY
Palisade foundation load run ($(nproc) cores, ${DURATION}s per step, release build, SQLite)
  GET /healthz                      ${HEALTH_RPS} req/s
  GET /api/v1/me (Bearer)           ${ME_RPS} req/s  (${RATIO}% of /healthz; targets: >= 10000 and >= 30%)
  GET /api/v1/me p99 @ 1000 req/s   ${ME_P99} ms  (target <= 5 ms)
  same, during a login flood        ${ME_P99_FLOOD} ms  (target <= 25 ms)
    flood answers: ${FLOOD_CODES}
  idle RSS                          $((RSS_IDLE_KB / 1024)) MB  (target <= 60 MB)
  GET /api/v1/tenant with a JWT     ${TENANT_JWT_RPS} req/s
  GET /api/v1/tenant with an API key ${TENANT_KEY_RPS} req/s (${KEY_RATIO}% of JWT; target >= 80%)
    key authentication adds         ${KEY_EXTRA_US} us of CPU per request (target <= 30 us; negative = cheaper)
SUMMARY
