#!/usr/bin/env bash
# Repeatable load run for the WhatsApp messaging figures (see README, "Performance").
#
#   bench/messaging-load.sh                  # SQLite: builds release, runs everything, prints a summary
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres bench/messaging-load.sh
#                                            # then again on a fresh PostgreSQL database it creates
#                                            # (and drops); the role must be allowed CREATE DATABASE
#   BENCH_BIN=target/release/palisade bench/messaging-load.sh   # an existing build (palisade-bench
#                                           # from the same folder, or BENCH_TOOL)
#
# Everything runs on 127.0.0.1: `palisade sim` (the Cloud API simulator) and `palisade serve` on a
# throw-away data directory with its Graph base URL pointing at the simulator. Steps, each on a
# freshly started server (same database) so that one step's backlog or freed memory does not
# colour the next:
#   1. `palisade-bench ingest`: signed inbound webhooks of 50 messages, sustained
#      BENCH_INGEST_SECONDS (default 60), counted when processed, with one of the tenant's
#      websockets open (so each message's event is read and published);
#   2. `palisade-bench ws-latency`: BENCH_WS_RATE (default 500) messages/s injected into the
#      simulator for BENCH_WS_SECONDS (default 30); time until each `message.created` reaches a
#      websocket. The bench turns the simulator's webhook batching and duplicates off (see
#      crates/bench/src/ws.rs for why);
#   3. `palisade-bench ws-idle`: BENCH_IDLE_SOCKETS (default 5000) authenticated idle websockets;
#      the server's resident memory after minus before (read from /proc by the bench).
#
# Rate limits are off (PALISADE_RATE_LIMIT_*=0): every connection comes from one client address,
# and the per-address API limit (100/min by default) would refuse the websocket handshakes after
# the first hundred; the per-user websocket cap (PALISADE_WS_MAX_PER_USER, 20) is raised above
# BENCH_IDLE_SOCKETS, which one user's token opens. We measure the server, not its throttles. The open-file limit is raised for
# the thousands of sockets (server and client both inherit it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PORT="${BENCH_PORT:-18282}"
SIM_PORT="${BENCH_SIM_PORT:-18290}"
INGEST_SECONDS="${BENCH_INGEST_SECONDS:-60}"
WS_SECONDS="${BENCH_WS_SECONDS:-30}"
WS_RATE="${BENCH_WS_RATE:-500}"
IDLE_SOCKETS="${BENCH_IDLE_SOCKETS:-5000}"
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
cleanup() {
  stop_server
  if [ -n "${SIM_PID:-}" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

NEED_FILES=$((IDLE_SOCKETS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NEED_FILES" ]; then
  ulimit -n "$NEED_FILES" 2>/dev/null || {
    echo "cannot raise the open-file limit to $NEED_FILES (hard limit $(ulimit -Hn)); lower BENCH_IDLE_SOCKETS" >&2
    exit 1
  }
fi

if [ -n "${BENCH_BIN:-}" ]; then
  # An existing build (palisade-bench from the same folder, or BENCH_TOOL).
  BIN="$(cd "$(dirname "$BENCH_BIN")" && pwd)/$(basename "$BENCH_BIN")"
  BENCH="${BENCH_TOOL:-$(dirname "$BIN")/palisade-bench}"
else
  cargo build --release --locked -p palisade -p palisade-bench >/dev/null 2>&1 ||
    cargo build --release --locked -p palisade -p palisade-bench
  BIN="$ROOT/target/release/palisade"
  BENCH="$ROOT/target/release/palisade-bench"
fi

for url in "$BASE/healthz" "$SIM/_sim/config"; do
  if curl -fsS "$url" >/dev/null 2>&1; then
    echo "something already answers $url; pick other ports with BENCH_PORT / BENCH_SIM_PORT" >&2
    exit 1
  fi
done
"$BIN" sim --listen "127.0.0.1:${SIM_PORT}" --auto-status off >"$WORK/sim.log" 2>&1 &
SIM_PID=$!

# start_server DATA_DIR [DATABASE_URL]
start_server() {
  (cd "$WORK" && exec env PALISADE_LISTEN="127.0.0.1:${PORT}" PALISADE_DATA_DIR="$1" \
    ${2:+PALISADE_DATABASE_URL="$2"} \
    PALISADE_WHATSAPP_GRAPH_BASE_URL="$SIM" \
    PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE=0 \
    PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 PALISADE_WS_MAX_PER_USER=$((IDLE_SOCKETS + 10)) PALISADE_LOG=warn \
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
for _ in $(seq 1 50); do curl -fsS "$SIM/_sim/config" >/dev/null 2>&1 && break; sleep 0.2; done

load() { awk '{print $1, $2, $3}' /proc/loadavg; }

# run_all LABEL DATA_DIR DATABASE_URL_FOR_THE_SERVER_OR_EMPTY COUNTER_DATABASE_URL
run_all() {
  local label="$1" dir="$2" url="$3" counter="$4" out="$WORK/$1"
  mkdir -p "$dir"
  echo "== $label: ingest (${INGEST_SECONDS}s; load average before: $(load))" >&2
  start_server "$dir" "$url"
  "$BENCH" ingest --server "$BASE" --sim "$SIM" --database-url "$counter" \
    --duration "$INGEST_SECONDS" >"$out-ingest.txt" || echo "  (ingest exited with status $?)" >>"$out-ingest.txt"
  stop_server
  echo "== $label: ws-latency (${WS_RATE}/s for ${WS_SECONDS}s; load average before: $(load))" >&2
  start_server "$dir" "$url"
  "$BENCH" ws-latency --server "$BASE" --sim "$SIM" --rate "$WS_RATE" \
    --duration "$WS_SECONDS" >"$out-latency.txt" || echo "  (ws-latency exited with status $?)" >>"$out-latency.txt"
  stop_server
  echo "== $label: ws-idle (${IDLE_SOCKETS} sockets; load average before: $(load))" >&2
  start_server "$dir" "$url"
  "$BENCH" ws-idle --server "$BASE" --connections "$IDLE_SOCKETS" \
    --server-pid "$SERVER_PID" >"$out-idle.txt" || echo "  (ws-idle exited with status $?)" >>"$out-idle.txt"
  # For comparison: the server's RSS (ps) once the sockets are closed again.
  sleep 2
  echo "  server RSS (ps) after the sockets closed: $(($(ps -o rss= -p "$SERVER_PID" | tr -d ' ') / 1024)) MB" >>"$out-idle.txt"
  stop_server
  cat "$out-ingest.txt" "$out-latency.txt" "$out-idle.txt" >"$out-all.txt"
}

run_all sqlite "$WORK/sqlite" "" "sqlite://$WORK/sqlite/palisade.sqlite"

if [ -n "$PG_ADMIN_URL" ]; then
  PG_DB="palisade_bench_$$"
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$PG_ADMIN_URL" "$PG_DB")
  run_all postgres "$WORK/postgres" "$PG_URL" "$PG_URL"
fi

echo
echo "Palisade messaging load run ($(nproc) cores, release build; load average at the end: $(load))"
for label in sqlite postgres; do
  [ -f "$WORK/$label-all.txt" ] || continue
  echo "--- $label"
  cat "$WORK/$label-all.txt"
done
