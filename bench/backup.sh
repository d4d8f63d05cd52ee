#!/usr/bin/env bash
# Backup figures (README, "Performance"; issue 15, "Backups"): on a SQLite database of about
# SIZE_MB megabytes (default 1024), the time of `palisade backup create` (taken while the server
# runs), `backup verify` and `backup restore` (into an empty database), and `GET /api/v1/me` p99
# while the backup runs. Targets: p99 ≤ 50 ms during the backup; each step ≤ 120 s at 1 GB.
#
#   bench/backup.sh            # 1 GB (builds release)
#   bench/backup.sh 50         # a quick check of the script
#   BENCH_BIN=target/debug/palisade bench/backup.sh 50   # an existing binary, no build
#
# Needs hey (apt-get install -y hey) and sqlite3 (apt-get install -y sqlite3). The server runs on
# a throw-away data directory on 127.0.0.1; the database is seeded directly with contacts whose
# profile names are random hex (so the archive compresses like real data, about 2:1), then the
# server is started on it and `GET /api/v1/me` is requested at BENCH_RATE (default 100) requests
# a second with a Bearer token for as long as `backup create` runs. Archives are encrypted with a
# passphrase (age scrypt, about a second of work at each end).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SIZE_MB="${1:-1024}"
PORT="${BENCH_PORT:-18481}"
RATE="${BENCH_RATE:-100}"
DATA="$WORK/data"
export PALISADE_BACKUP_PASSPHRASE="bench-backup-passphrase-not-secret"

bench_on_exit() { if [ -n "${HEY_PID:-}" ]; then kill "$HEY_PID" 2>/dev/null || true; fi; }
bench_need hey sqlite3
bench_build
start_server() { bench_start_server "$PORT" "$DATA"; }

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# 1. A tenant, then the seed rows (server stopped: one writer).
start_server
curl -fsS -X POST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"tenant_name":"Bench Co","name":"Bench User","email":"bench@bench.example","password":"correct-orbit-lantern-quietly"}' >/dev/null
bench_stop_server
DB="$DATA/palisade.sqlite"
ROWS=$((SIZE_MB * 1024 * 1024 / 1000))
echo "seeding about ${SIZE_MB} MB (${ROWS} contacts)…"
BATCH=100000
done_rows=0
while [ "$done_rows" -lt "$ROWS" ]; do
  n=$((ROWS - done_rows < BATCH ? ROWS - done_rows : BATCH))
  sqlite3 "$DB" "
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $n)
    INSERT INTO contacts (id, tenant_id, phone, name, wa_profile_name, created_at, updated_at)
    SELECT randomblob(16), (SELECT id FROM tenants LIMIT 1), '+1' || (2000000000 + $done_rows + i),
           'Seed contact ' || ($done_rows + i), lower(hex(randomblob(400))),
           '2026-12-01T00:00:00.000000000Z', '2026-12-01T00:00:00.000000000Z'
    FROM s;"
  done_rows=$((done_rows + n))
done
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
echo "database: $(du -m "$DB" | cut -f1) MB"

# 2. The backup while the server answers GET /api/v1/me.
start_server
TOKEN=$(curl -fsS -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@bench.example","password":"correct-orbit-lantern-quietly"}' | json_field access_token)
hey -z 3600s -q "$((RATE / 2))" -c 2 -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me" >"$WORK/hey.txt" 2>&1 &
HEY_PID=$!
sleep 2
seconds() { python3 -c "import time; print(f'{time.time():.3f}')"; }
t0=$(seconds)
(cd "$WORK" && PALISADE_DATA_DIR="$DATA" PALISADE_LOG=warn "$BIN" backup create --output "$WORK/backup.tar.zst.age") >"$WORK/create.txt"
t1=$(seconds)
kill -INT "$HEY_PID"
wait "$HEY_PID" 2>/dev/null || true
HEY_PID=""
bench_stop_server

# 3. Verify, then restore into an empty database.
(cd "$WORK" && PALISADE_DATA_DIR="$DATA" PALISADE_LOG=warn "$BIN" backup verify "$WORK/backup.tar.zst.age") >"$WORK/verify.txt"
t2=$(seconds)
(cd "$WORK" && PALISADE_DATA_DIR="$DATA" PALISADE_LOG=warn "$BIN" backup restore "$WORK/backup.tar.zst.age" \
  --database-url "sqlite://$WORK/restored/palisade.sqlite" --storage-dir "$WORK/restored/storage") >"$WORK/restore.txt"
t3=$(seconds)
grep -q "backup OK" "$WORK/verify.txt" || { cat "$WORK/verify.txt" >&2; exit 1; }

p99=$(awk '/99% in/ {printf "%.1f", $3 * 1000}' "$WORK/hey.txt")
p50=$(awk '/50% in/ {printf "%.1f", $3 * 1000}' "$WORK/hey.txt")
requests=$(awk '/\[200\]/ {print $2}' "$WORK/hey.txt")
others=$(awk '/Status code distribution/ {f=1; next} f && /\[[0-9]+\]/ && !/\[200\]/ {s += $2} END {print s + 0}' "$WORK/hey.txt")
ARCHIVE_MB=$(du -m "$WORK/backup.tar.zst.age" | cut -f1)
contacts=$(awk '$1 == "contacts" {print $2}' "$WORK/restore.txt")
cat <<SUMMARY
backup of a $(du -m "$DB" | cut -f1) MB SQLite database (archive ${ARCHIVE_MB} MB, ${contacts:-?} contacts restored)
  backup create   $(python3 -c "print(f'{$t1 - $t0:.1f}')") s   (target ≤ 120 s at 1 GB)
  backup verify   $(python3 -c "print(f'{$t2 - $t1:.1f}')") s   (target ≤ 120 s)
  backup restore  $(python3 -c "print(f'{$t3 - $t2:.1f}')") s   (target ≤ 120 s)
  GET /api/v1/me during the backup at ${RATE} req/s: p50 ${p50} ms, p99 ${p99} ms (target ≤ 50 ms); ${requests:-0} answered 200, ${others} other
SUMMARY
