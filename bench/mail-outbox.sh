#!/usr/bin/env bash
# Repeatable run for the figure "the mail outbox delivers ≥ 50 mails/s to a local SMTP server"
# (README, "Performance"; issue 13, Mail): builds release and runs `palisade-bench mail-outbox`,
# which starts the application in-process on a throw-away SQLite database with
# PALISADE_SMTP_URL pointing at an SMTP sink on loopback, queues BENCH_MAILS (default 2000)
# mails, starts the mail worker and times it until every mail has arrived and is recorded as
# sent. With BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres it repeats the run
# on a fresh PostgreSQL database it creates (and drops).
#
#   bench/mail-outbox.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

MAILS="${BENCH_MAILS:-2000}"

bench_build

echo "load average before: $(bench_load)"
"$BENCH" mail-outbox --mails "$MAILS"
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  PALISADE_TEST_POSTGRES_URL="$BENCH_POSTGRES_URL" \
    "$BENCH" mail-outbox --mails "$MAILS" --postgres
fi
echo "load average after: $(bench_load)"
