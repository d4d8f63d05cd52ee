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
. bench/lib.sh

PORT="${BENCH_PORT:-18383}"
SIM_PORT="${BENCH_SIM_PORT:-18391}"
N="${BENCH_CONVERSATIONS:-10000}"
SECONDS_EACH="${BENCH_SECONDS:-20}"
SERVER_ENV=(PALISADE_PUBLIC_URL="http://127.0.0.1:${PORT}")

bench_need hey
bench_build
bench_start_sim "$SIM_PORT" --auto-status off

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
  bench_start_server "$PORT" "$2" "${3:-}"
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
  bench_stop_server
}

run sqlite "$WORK/sqlite"
if [ -n "$PG_ADMIN_URL" ]; then
  bench_pg_database "palisade_bench_$$"
  run postgres "$WORK/postgres" "$PG_URL"
fi
echo
echo "Palisade inbox page ($(nproc) cores, release build; load average at the end: $(bench_load))"
cat "$WORK/results.txt"
