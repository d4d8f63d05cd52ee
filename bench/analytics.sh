#!/usr/bin/env bash
# Server time of each `/api/v1/analytics/*` endpoint over 1,000,000 messages (README,
# "Performance"; target ≤ 200 ms).
#
#   bench/analytics.sh                      # SQLite
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres bench/analytics.sh
#                                           # then again on a fresh PostgreSQL database it
#                                           # creates (and drops)
#
# Needs sqlite3 and psql. Builds the release binary (or takes BENCH_BIN), starts `palisade sim`
# and `palisade serve` on 127.0.0.1 with a throw-away data directory, registers a tenant and
# connects a simulated number through the API, stops the server and seeds by direct SQL inserts
# (fast; not the inbound path): BENCH_CONVERSATIONS (default 50,000) contacts with one
# conversation each, created over 2026 (one a third resolved, half assigned to the owner), and
# BENCH_MESSAGES_EACH (default 20) messages per conversation, in and out by turns ten minutes
# apart: 1,000,000 messages (the triggers on `messages`, migration 0031, fill `message_counts`
# and the conversations' first-response columns as they do for every write), and
# BENCH_CAMPAIGNS (default 24) campaigns started over 2026, every contact the recipient of one
# (a tenth skipped, the others dispatched with their conversation's first outbound message, so
# each has a reply after it). Then it runs
# ANALYZE (PostgreSQL: VACUUM ANALYZE, what autovacuum does on a live database), starts the
# server again and times BENCH_SAMPLES (default 20)
# sequential requests of each endpoint at the client, for 30 local days and for 366 days
# (`tz=America/New_York`, day buckets), and prints p50 and max.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

PORT="${BENCH_PORT:-18483}"
SIM_PORT="${BENCH_SIM_PORT:-18491}"
CONVERSATIONS="${BENCH_CONVERSATIONS:-50000}"
EACH="${BENCH_MESSAGES_EACH:-20}"
SAMPLES="${BENCH_SAMPLES:-20}"
CAMPAIGNS="${BENCH_CAMPAIGNS:-24}"
# BENCH_KEEP=1 keeps the data directory (and the PostgreSQL database) for a closer look at the
# plans; the script prints where they are (bench/lib.sh).
SERVER_ENV=(PALISADE_PUBLIC_URL="http://127.0.0.1:${PORT}")

bench_need sqlite3
bench_build
bench_start_sim "$SIM_PORT" --auto-status off

# The tenant, its owner and a connected number, through the API; prints the owner's email.
setup_tenant() {
  python3 - "$BASE" "$SIM" <<'PY'
import json, sys, urllib.request
base, sim = sys.argv[1], sys.argv[2]
def call(url, body=None, token=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")
owner = call(f"{base}/api/v1/auth/register", {"tenant_name": "Bench", "name": "Owner",
             "email": "owner@bench.example", "password": "correct-orbit-lantern-quietly"})
num = call(f"{sim}/_sim/phone-numbers", {"verified_name": "Bench"})
call(f"{base}/api/v1/whatsapp/connections", {"display_name": "Bench",
     "phone_number_id": num["phone_number_id"], "waba_id": num["waba_id"],
     "access_token": num["access_token"], "app_secret": num["app_secret"]}, owner["access_token"])
PY
}

# The seed, in each dialect. Times: 2026-01-01T00:00:00Z plus an offset in seconds; a
# conversation i starts on day i % 365 at second (i * 7919) % 86400.
sqlite_seed() {
  sqlite3 "$1" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
CREATE TEMP TABLE ctx AS
  SELECT t.id AS tenant_id, w.id AS connection_id, u.id AS owner_id
  FROM tenants t JOIN whatsapp_connections w ON w.tenant_id = t.id
  JOIN users u ON u.tenant_id = t.id WHERE t.name = 'Bench';
CREATE TEMP TABLE n AS
  WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${CONVERSATIONS})
  SELECT i, randomblob(16) AS contact_id, randomblob(16) AS conversation_id,
         (i % 365) * 86400 + (i * 7919) % 86400 AS start FROM s;
CREATE TEMP TABLE m AS
  WITH RECURSIVE s(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM s WHERE j < ${EACH} - 1)
  SELECT j FROM s;
INSERT INTO contacts (id, tenant_id, phone, created_at, updated_at)
  SELECT n.contact_id, ctx.tenant_id, '+4471' || printf('%08d', n.i),
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start, 'unixepoch'),
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start, 'unixepoch')
  FROM n, ctx;
INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status, last_message_at,
    last_inbound_at, created_at, updated_at, assignee_id, resolved_at)
  SELECT n.conversation_id, ctx.tenant_id, n.contact_id, ctx.connection_id,
         CASE WHEN n.i % 3 = 0 THEN 'resolved' ELSE 'open' END,
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start + (${EACH} - 1) * 600, 'unixepoch'),
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start, 'unixepoch'),
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start, 'unixepoch'),
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start, 'unixepoch'),
         CASE WHEN n.i % 2 = 0 THEN ctx.owner_id END,
         CASE WHEN n.i % 3 = 0 THEN
           strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start + 3600 * (1 + n.i % 48), 'unixepoch') END
  FROM n, ctx;
INSERT INTO messages (id, tenant_id, conversation_id, connection_id, wamid, direction, type, body,
    text, status, created_at, status_updated_at, author_id)
  SELECT randomblob(16), ctx.tenant_id, n.conversation_id, ctx.connection_id, NULL,
         CASE WHEN m.j % 2 = 0 THEN 'inbound' ELSE 'outbound' END, 'text', '{}', 'Hello',
         CASE WHEN m.j % 2 = 0 THEN 'received' ELSE 'sent' END,
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start + m.j * 600, 'unixepoch'),
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + n.start + m.j * 600, 'unixepoch'),
         CASE WHEN m.j % 2 = 1 THEN ctx.owner_id END
  FROM n, m, ctx;
CREATE TEMP TABLE k AS
  WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < ${CAMPAIGNS} - 1)
  SELECT k, randomblob(16) AS id,
         strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 1767225600 + k * (365 * 86400 / ${CAMPAIGNS}) + 36000, 'unixepoch') AS at
  FROM s;
INSERT INTO campaigns (id, tenant_id, name, connection_id, template_name, template_language,
    parameters, audience, status, started_at, completed_at, created_by, created_at, updated_at)
  SELECT k.id, ctx.tenant_id, 'Campaign ' || k.k, ctx.connection_id, 'offer', 'en', '[]', '{}',
         'completed', k.at, k.at, ctx.owner_id, k.at, k.at
  FROM k, ctx;
INSERT INTO campaign_recipients (tenant_id, campaign_id, contact_id, status, message_id, updated_at)
  SELECT ctx.tenant_id, k.id, n.contact_id,
         CASE WHEN n.i % 10 = 0 THEN 'skipped' ELSE 'dispatched' END,
         CASE WHEN n.i % 10 <> 0 THEN
           (SELECT o.id FROM messages o WHERE o.tenant_id = ctx.tenant_id
              AND o.conversation_id = n.conversation_id AND o.direction = 'outbound'
            ORDER BY o.created_at LIMIT 1) END,
         k.at
  FROM n, ctx JOIN k ON k.k = n.i % ${CAMPAIGNS};
COMMIT;
ANALYZE;
SQL
}

pg_seed() {
  psql "$1" -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
CREATE TEMP TABLE ctx AS
  SELECT t.id AS tenant_id, w.id AS connection_id, u.id AS owner_id
  FROM tenants t JOIN whatsapp_connections w ON w.tenant_id = t.id
  JOIN users u ON u.tenant_id = t.id WHERE t.name = 'Bench';
CREATE TEMP TABLE n AS
  SELECT i, gen_random_uuid() AS contact_id, gen_random_uuid() AS conversation_id,
         timestamptz '2026-01-01 00:00:00Z'
           + make_interval(secs => (i % 365) * 86400 + (i * 7919) % 86400) AS start
  FROM generate_series(1, ${CONVERSATIONS}) AS i;
INSERT INTO contacts (id, tenant_id, phone, created_at, updated_at)
  SELECT n.contact_id, ctx.tenant_id, '+4471' || lpad(n.i::text, 8, '0'), n.start, n.start
  FROM n, ctx;
INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status, last_message_at,
    last_inbound_at, created_at, updated_at, assignee_id, resolved_at)
  SELECT n.conversation_id, ctx.tenant_id, n.contact_id, ctx.connection_id,
         CASE WHEN n.i % 3 = 0 THEN 'resolved' ELSE 'open' END,
         n.start + make_interval(secs => (${EACH} - 1) * 600), n.start, n.start, n.start,
         CASE WHEN n.i % 2 = 0 THEN ctx.owner_id END,
         CASE WHEN n.i % 3 = 0 THEN n.start + make_interval(secs => 3600 * (1 + n.i % 48)) END
  FROM n, ctx;
INSERT INTO messages (id, tenant_id, conversation_id, connection_id, wamid, direction, type, body,
    text, status, created_at, status_updated_at, author_id)
  SELECT gen_random_uuid(), ctx.tenant_id, n.conversation_id, ctx.connection_id, NULL,
         CASE WHEN j % 2 = 0 THEN 'inbound' ELSE 'outbound' END, 'text', '{}', 'Hello',
         CASE WHEN j % 2 = 0 THEN 'received' ELSE 'sent' END,
         n.start + make_interval(secs => j * 600), n.start + make_interval(secs => j * 600),
         CASE WHEN j % 2 = 1 THEN ctx.owner_id END
  FROM n, generate_series(0, ${EACH} - 1) AS j, ctx;
CREATE TEMP TABLE k AS
  SELECT k, gen_random_uuid() AS id,
         timestamptz '2026-01-01 00:00:00Z'
           + make_interval(secs => k * (365 * 86400 / ${CAMPAIGNS}) + 36000) AS at
  FROM generate_series(0, ${CAMPAIGNS} - 1) AS k;
INSERT INTO campaigns (id, tenant_id, name, connection_id, template_name, template_language,
    parameters, audience, status, started_at, completed_at, created_by, created_at, updated_at)
  SELECT k.id, ctx.tenant_id, 'Campaign ' || k.k, ctx.connection_id, 'offer', 'en', '[]', '{}',
         'completed', k.at, k.at, ctx.owner_id, k.at, k.at
  FROM k, ctx;
INSERT INTO campaign_recipients (tenant_id, campaign_id, contact_id, status, message_id, updated_at)
  SELECT ctx.tenant_id, k.id, n.contact_id,
         CASE WHEN n.i % 10 = 0 THEN 'skipped' ELSE 'dispatched' END,
         CASE WHEN n.i % 10 <> 0 THEN
           (SELECT o.id FROM messages o WHERE o.tenant_id = ctx.tenant_id
              AND o.conversation_id = n.conversation_id AND o.direction = 'outbound'
            ORDER BY o.created_at LIMIT 1) END,
         k.at
  FROM n CROSS JOIN ctx JOIN k ON k.k = n.i % ${CAMPAIGNS};
COMMIT;
VACUUM ANALYZE;
SQL
}

measure() {
  python3 - "$BASE" "$SAMPLES" <<'PY'
import json, sys, time, urllib.request
base, samples = sys.argv[1], int(sys.argv[2])
def call(url, body=None, token=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")
token = call(f"{base}/api/v1/auth/login", {"email": "owner@bench.example",
             "password": "correct-orbit-lantern-quietly"})["access_token"]
ranges = {"30 days": "from=2026-06-01&to=2026-07-01", "366 days": "from=2026-01-01&to=2027-01-02"}
for endpoint in ["overview", "conversations", "agents", "campaigns", "deals"]:
    for label, q in ranges.items():
        url = f"{base}/api/v1/analytics/{endpoint}?{q}&tz=America/New_York"
        body = call(url, token=token)  # warm-up, and a check that it answers
        times = []
        for _ in range(samples):
            t = time.perf_counter()
            call(url, token=token)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        extra = ""
        if endpoint == "overview":
            extra = f"  (messages_in {body['messages_in']}, out {body['messages_out']})"
        if endpoint == "campaigns":
            n = len(body["campaigns"])
            extra = f"  ({n} campaigns, {sum(c['targeted'] for c in body['campaigns'])} targeted)"
        print(f"{endpoint:14} {label:9} p50 {times[len(times) // 2]:7.1f} ms  max {times[-1]:7.1f} ms{extra}")
PY
}

# run LABEL DATA_DIR [DATABASE_URL]
run() {
  local label="$1"
  bench_start_server "$PORT" "$2" "${3:-}"
  setup_tenant
  bench_stop_server
  echo "== $label: seeding $CONVERSATIONS conversations x $EACH messages" >&2
  local t0=$SECONDS
  if [ -n "${3:-}" ]; then pg_seed "$3"; else sqlite_seed "$2/palisade.sqlite"; fi
  echo "   seeded in $((SECONDS - t0)) s" >&2
  bench_start_server "$PORT" "$2" "${3:-}"
  {
    echo "--- $label ($((CONVERSATIONS * EACH)) messages, $CONVERSATIONS conversations)"
    measure
  } >>"$WORK/results.txt"
  bench_stop_server
}

# BENCH_SQLITE=0 skips SQLite (with BENCH_POSTGRES_URL: PostgreSQL alone).
if [ "${BENCH_SQLITE:-1}" != 0 ]; then run sqlite "$WORK/sqlite"; fi
if [ -n "$PG_ADMIN_URL" ]; then
  bench_pg_database "palisade_bench_$$"
  run postgres "$WORK/postgres" "$PG_URL"
fi
echo
echo "Palisade analytics ($(nproc) cores; load average at the end: $(bench_load))"
cat "$WORK/results.txt"
