# What the bench scripts share: a throw-away work folder, the release build, the simulator and
# `palisade serve` on local ports with the rate limits off, a fresh PostgreSQL database, and
# stopping all of it at exit. Sourced by each script from the repository root:
#
#   set -euo pipefail
#   cd "$(dirname "$0")/.."
#   . bench/lib.sh
#
# Sets ROOT (the repository), WORK (removed at exit unless BENCH_KEEP is set) and PG_ADMIN_URL
# (BENCH_POSTGRES_URL, empty for SQLite only). A script may define `bench_on_exit` for its own
# clean-up (it runs first).

ROOT="$PWD"
WORK="$(mktemp -d)"
PG_ADMIN_URL="${BENCH_POSTGRES_URL:-}"
PG_DB=""
SERVER_PID=""
SIM_PID=""
SIM=""
# The server's log (a script may point it elsewhere, e.g. one per run).
SERVER_LOG="$WORK/server.log"
# More VAR=value settings for `bench_start_server`, after the defaults (so they win).
SERVER_ENV=()

# bench_need COMMAND...: exits with a hint unless each command is installed.
bench_need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "install $c first (apt-get install -y $c)" >&2; exit 1; }
  done
}

# bench_build: BIN (palisade) and BENCH (palisade-bench), built in release; BENCH_BIN names an
# existing `palisade` build instead (BENCH_TOOL its palisade-bench, else the one beside it).
bench_build() {
  if [ -n "${BENCH_BIN:-}" ]; then
    BIN="$(cd "$(dirname "$BENCH_BIN")" && pwd)/$(basename "$BENCH_BIN")"
    BENCH="${BENCH_TOOL:-$(dirname "$BIN")/palisade-bench}"
    return
  fi
  # The same packages in every script: cargo unifies features over the packages it builds, so
  # `-p palisade` alone would rebuild several dependencies with other features.
  cargo build --release --locked -p palisade -p palisade-bench >/dev/null 2>&1 ||
    cargo build --release --locked -p palisade -p palisade-bench
  BIN="$ROOT/target/release/palisade"
  BENCH="$ROOT/target/release/palisade-bench"
}

# bench_free URL...: exits unless nothing answers each URL (a port left over from another run).
bench_free() {
  local url
  for url in "$@"; do
    if curl -fsS "$url" >/dev/null 2>&1; then
      echo "something already answers $url; pick other ports with BENCH_PORT / BENCH_SIM_PORT" >&2
      exit 1
    fi
  done
}

# bench_start_sim PORT [ARGS...]: `palisade sim` (of SIM_BIN, else BIN) on PORT (ARGS: e.g.
# --auto-status off), SIM its URL, once it answers.
bench_start_sim() {
  local port="$1"
  shift
  SIM="http://127.0.0.1:${port}"
  bench_free "$SIM/_sim/config"
  "${SIM_BIN:-$BIN}" sim --listen "127.0.0.1:${port}" "$@" >>"$WORK/sim.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 1 50); do curl -fsS "$SIM/_sim/config" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "the simulator did not start; its log:" >&2
  tail -n 30 "$WORK/sim.log" >&2
  exit 1
}

bench_stop_sim() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=""
  fi
}

# bench_start_server PORT DATA_DIR [DATABASE_URL]: `palisade serve` on PORT, BASE its URL, once
# it answers. Rate limits are off (every request of a run comes from one address: we measure
# the server, not its throttles); the simulator is its Graph API when one runs; SERVER_ENV
# adds settings. Exits with the end of the server's log if it does not start.
bench_start_server() {
  BASE="http://127.0.0.1:$1"
  bench_free "$BASE/healthz"
  mkdir -p "$2"
  (cd "$WORK" && exec env PALISADE_LISTEN="127.0.0.1:$1" PALISADE_DATA_DIR="$2" \
    ${3:+PALISADE_DATABASE_URL="$3"} \
    ${SIM:+PALISADE_WHATSAPP_GRAPH_BASE_URL="$SIM"} \
    PALISADE_RATE_LIMIT_API_PER_MINUTE=0 PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE=0 \
    PALISADE_RATE_LIMIT_REGISTER_PER_HOUR=0 PALISADE_LOG=warn \
    "${SERVER_ENV[@]}" "$BIN" serve) >>"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "the server did not start; its log:" >&2
  tail -n 30 "$SERVER_LOG" >&2
  exit 1
}

bench_stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

# bench_pg_database NAME: a fresh database NAME on BENCH_POSTGRES_URL (dropped at exit), PG_URL
# its URL.
bench_pg_database() {
  PG_DB="$1"
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$PG_ADMIN_URL" "$PG_DB")
}

# The load average (1, 5, 15 minutes), printed beside each figure.
bench_load() { cut -d' ' -f1-3 /proc/loadavg; }

bench_cleanup() {
  if [ "$(type -t bench_on_exit)" = function ]; then bench_on_exit || true; fi
  bench_stop_server
  bench_stop_sim
  if [ -n "${BENCH_KEEP:-}" ]; then
    echo "kept: $WORK${PG_DB:+ and the database $PG_DB}" >&2
    return
  fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap bench_cleanup EXIT
