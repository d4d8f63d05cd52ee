#!/usr/bin/env bash
# Server time of the console's inbox page with 10,000 conversations (README, "Performance").
#
#   bench/inbox-page.sh                      # SQLite
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres bench/inbox-page.sh
#                                            # then again on a fresh PostgreSQL database it
#                                            # creates (and drops)
#
# Needs hey (apt-get install -y hey). Builds the release binary, starts `palisade sim` and
# `palisade serve` on 127.0.0.1 with a throw-away data directory, registers a tenant, connects a
# simulated number and lets BENCH_CONVERSATIONS (default 10,000) customers write to it through
# the simulator (signed webhooks, as in production), so each is a conversation with a message.
# Then `GET /inbox` (the first page of 50, the whole HTML page: session check, the list with each
# conversation's last message, the tenant's users for the filters) with the session cookie, as a
# browser sends it, for BENCH_SECONDS (default 20) at concurrency 2 (the machine's cores), and
# the same for `/inbox?fragment=list` (what the live script re-fetches) and a filtered list.
# Reports hey's p50/p99 (loopback; the client's time includes the server's and little else).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PORT="${BENCH_PORT:-18383}"
SIM_PORT="${BENCH_SIM_PORT:-18391}"
N="${BENCH_CONVERSATIONS:-10000}"
SECONDS_EACH="${BENCH_SECONDS:-20}"
BASE="http://127.0.0.1:${PORT}"
SIM="http://127.0.0.1:${SIM_PORT}"
WORK="$(mktemp -d)"
PG_ADMIN_URL="${BENCH_POSTGRES_URL:-}"
PG_DB=""

command -v hey >/dev/null || { echo "install hey first (apt-get install -y hey)" >&2; exit 1; }

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

# The same packages as the other bench scripts: cargo unifies features over the packages it
# builds, so `-p palisade` alone would rebuild several dependencies with other features.
cargo build --release --locked -p palisade -p palisade-bench >/dev/null 2>&1 ||
  cargo build --release --locked -p palisade -p palisade-bench
BIN="$ROOT/target/release/palisade"

for url in "$BASE/healthz" "$SIM/_sim/config"; do
  if curl -fsS "$url" >/dev/null 2>&1; then
    echo "something already answers $url; pick other ports with BENCH_PORT / BENCH_SIM_PORT" >&2
    exit 1
  fi
done
"$BIN" sim --listen "127.0.0.1:${SIM_PORT}" --auto-status off >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 50); do curl -fsS "$SIM/_sim/config" >/dev/null 2>&1 && break; sleep 0.2; done

# start_server DATA_DIR [DATABASE_URL]
start_server() {
  mkdir -p "$1"
  (cd "$WORK" && exec env PALISADE_LISTEN="127.0.0.1:${PORT}" PALISADE_DATA_DIR="$1" \
    ${2:+PALISADE_DATABASE_URL="$2"} \
    PALISADE_PUBLIC_URL="$BASE" \
    PALISADE_WHATSAPP_GRAPH_BASE_URL="$SIM" \
    PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE=0 \
    PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 PALISADE_LOG=warn \
    "$BIN" serve) >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "the server did not start; its log:" >&2
  tail -n 30 "$WORK/server.log" >&2
  exit 1
}

# hey's p50 and p99, and any answer that was not a 200 (a redirect to the sign-in page or an
# error page would be timed as if it were the inbox).
p() {
  awk '/^ *50%|^ *99%/ {printf "%s %.1f ms  ", $1, $3 * 1000}
       /Status code distribution/ {codes = 1; next}
       codes && /\[[0-9]+\]/ && $1 != "[200]" {printf "NOT 200: %s %s responses  ", $1, $2}
       /Error distribution/ {printf "ERRORS (see hey)  "}'
}

# run LABEL DATA_DIR [DATABASE_URL]
run() {
  local label="$1"
  start_server "$2" "${3:-}"
  echo "== $label: seeding $N conversations" >&2
  TOKEN=$(python3 - "$BASE" "$SIM" "$N" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, sim, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(url, body=None, token=None, method=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method=method or ("GET" if body is None else "POST"))
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")
owner = call(f"{base}/api/v1/auth/register", {"tenant_name": "Bench", "name": "Owner",
             "email": "owner@bench.example", "password": "correct-orbit-lantern-quietly"})
token = owner["access_token"]
num = call(f"{sim}/_sim/phone-numbers", {"verified_name": "Bench"})
conn = call(f"{base}/api/v1/whatsapp/connections", {"display_name": "Bench",
            "phone_number_id": num["phone_number_id"], "waba_id": num["waba_id"],
            "access_token": num["access_token"], "app_secret": num["app_secret"]}, token)
cid = conn["connection"]["id"]
call(f"{sim}/_sim/phone-numbers/{num['phone_number_id']}/subscribe",
     {"callback_url": f"{base}/webhooks/whatsapp/{cid}", "verify_token": conn["verify_token"]})
def send(i):
    call(f"{sim}/_sim/inbound", {"phone_number_id": num["phone_number_id"], "from": f"447{i:09d}",
         "profile_name": f"Customer {i}", "type": "text", "text": {"body": f"Hello, order {i}?"}})
with ThreadPoolExecutor(8) as ex:
    list(ex.map(send, range(n)))
# Wait until every conversation is in: page through the API.
for _ in range(600):
    seen, cursor = 0, None
    while True:
        page = call(f"{base}/api/v1/conversations?limit=200" + (f"&cursor={cursor}" if cursor else ""), token=token)
        seen += len(page["data"])
        cursor = page.get("next_cursor")
        if not cursor: break
    if seen >= n: break
    time.sleep(1)
print(token)
PY
)
  local cookie="Cookie: __Host-palisade_access=$TOKEN"
  local code
  code=$(curl -sS -o "$WORK/inbox.html" -w '%{http_code}' -H "$cookie" -H 'Accept: text/html' "$BASE/inbox")
  if [ "$code" != 200 ]; then
    echo "GET /inbox answered $code, not 200 (hey would time that answer instead of the inbox)" >&2
    exit 1
  fi
  hey -z 3s -c 2 -H "$cookie" -H 'Accept: text/html' "$BASE/inbox" >/dev/null   # warm-up
  {
    echo "--- $label ($N conversations)"
    echo "GET /inbox:                      $(hey -z "${SECONDS_EACH}s" -c 2 -H "$cookie" -H 'Accept: text/html' "$BASE/inbox" | p)"
    echo "GET /inbox?fragment=list:        $(hey -z "${SECONDS_EACH}s" -c 2 -H "$cookie" -H 'Accept: text/html' "$BASE/inbox?fragment=list" | p)"
    echo "GET /inbox?status=open&assignee=none: $(hey -z "${SECONDS_EACH}s" -c 2 -H "$cookie" -H 'Accept: text/html' "$BASE/inbox?status=open&assignee=none" | p)"
  } >>"$WORK/results.txt"
  stop_server
}

run sqlite "$WORK/sqlite"
if [ -n "$PG_ADMIN_URL" ]; then
  PG_DB="palisade_bench_$$"
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$PG_ADMIN_URL" "$PG_DB")
  run postgres "$WORK/postgres" "$PG_URL"
fi
echo
echo "Palisade inbox page ($(nproc) cores, release build; load average at the end: $(awk '{print $1, $2, $3}' /proc/loadavg))"
cat "$WORK/results.txt"
