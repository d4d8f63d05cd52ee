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
. bench/lib.sh

PORT="${BENCH_PORT:-18282}"
SIM_PORT="${BENCH_SIM_PORT:-18290}"
INGEST_SECONDS="${BENCH_INGEST_SECONDS:-60}"
WS_SECONDS="${BENCH_WS_SECONDS:-30}"
WS_RATE="${BENCH_WS_RATE:-500}"
IDLE_SOCKETS="${BENCH_IDLE_SOCKETS:-5000}"
SERVER_ENV=(PALISADE_WS_MAX_PER_USER=$((IDLE_SOCKETS + 10)))

NEED_FILES=$((IDLE_SOCKETS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NEED_FILES" ]; then
  ulimit -n "$NEED_FILES" 2>/dev/null || {
    echo "cannot raise the open-file limit to $NEED_FILES (hard limit $(ulimit -Hn)); lower BENCH_IDLE_SOCKETS" >&2
    exit 1
  }
fi

bench_build
bench_start_sim "$SIM_PORT" --auto-status off

# run_all LABEL DATA_DIR DATABASE_URL_FOR_THE_SERVER_OR_EMPTY COUNTER_DATABASE_URL
run_all() {
  local label="$1" dir="$2" url="$3" counter="$4" out="$WORK/$1"
  mkdir -p "$dir"
  echo "== $label: ingest (${INGEST_SECONDS}s; load average before: $(bench_load))" >&2
  bench_start_server "$PORT" "$dir" "$url"
  "$BENCH" ingest --server "$BASE" --sim "$SIM" --database-url "$counter" \
    --duration "$INGEST_SECONDS" >"$out-ingest.txt" || echo "  (ingest exited with status $?)" >>"$out-ingest.txt"
  bench_stop_server
  echo "== $label: ws-latency (${WS_RATE}/s for ${WS_SECONDS}s; load average before: $(bench_load))" >&2
  bench_start_server "$PORT" "$dir" "$url"
  "$BENCH" ws-latency --server "$BASE" --sim "$SIM" --rate "$WS_RATE" \
    --duration "$WS_SECONDS" >"$out-latency.txt" || echo "  (ws-latency exited with status $?)" >>"$out-latency.txt"
  bench_stop_server
  echo "== $label: ws-idle (${IDLE_SOCKETS} sockets; load average before: $(bench_load))" >&2
  bench_start_server "$PORT" "$dir" "$url"
  "$BENCH" ws-idle --server "$BASE" --connections "$IDLE_SOCKETS" \
    --server-pid "$SERVER_PID" >"$out-idle.txt" || echo "  (ws-idle exited with status $?)" >>"$out-idle.txt"
  # For comparison: the server's RSS (ps) once the sockets are closed again.
  sleep 2
  echo "  server RSS (ps) after the sockets closed: $(($(ps -o rss= -p "$SERVER_PID" | tr -d ' ') / 1024)) MB" >>"$out-idle.txt"
  bench_stop_server
  cat "$out-ingest.txt" "$out-latency.txt" "$out-idle.txt" >"$out-all.txt"
}

run_all sqlite "$WORK/sqlite" "" "sqlite://$WORK/sqlite/palisade.sqlite"

if [ -n "$PG_ADMIN_URL" ]; then
  bench_pg_database "palisade_bench_$$"
  run_all postgres "$WORK/postgres" "$PG_URL" "$PG_URL"
fi

echo
echo "Palisade messaging load run ($(nproc) cores, release build; load average at the end: $(bench_load))"
for label in sqlite postgres; do
  [ -f "$WORK/$label-all.txt" ] || continue
  echo "--- $label"
  cat "$WORK/$label-all.txt"
done
