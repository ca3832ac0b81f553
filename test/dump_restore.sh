#!/usr/bin/env bash
# pg_dump and pg_restore of a database using clerk_sync: the synced data comes back, with the
# tiers an administrator added (users in them would otherwise fail their foreign key on restore),
# and the rate limiter goes on from the restored counts.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

port=${CLERK_DUMP_TEST_PORT:-5545}
passed=0 failed=0
use_throwaway_dir

sql() { run_pg psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$1" -c "$2" 2>&1; }

cluster_start "$dir" "$port" || exit 1
sql postgres "CREATE DATABASE source" >/dev/null
sql source "SET client_min_messages = warning; CREATE EXTENSION clerk_sync;
            INSERT INTO clerk.tiers VALUES ('gold', 5);
            SELECT clerk_sync_user('user_gold', 'gold@example.com', tier => 'gold'),
                   clerk_sync_user('user_free', 'free@example.com');
            SELECT clerk_rate_limit_consume('user_gold', 3);
            UPDATE clerk.sync_state SET delta_watermark = now();  -- as a worker's sweep leaves it" >/dev/null

run_pg pg_dump -Fc -h "$dir" -p "$port" -U postgres -f "$dir/source.dump" source
check "pg_dump succeeds" 0 $?
sql postgres "CREATE DATABASE restored" >/dev/null
out=$(run_pg pg_restore --exit-on-error -h "$dir" -p "$port" -U postgres -d restored "$dir/source.dump" 2>&1)
check "pg_restore succeeds" "0 " "$? $out"

check "the users come back" "user_free FREE|user_gold gold" \
    "$(sql restored "SELECT string_agg(id || ' ' || tier, '|' ORDER BY id) FROM clerk.users")"
check "the added tier comes back, and the seeded ones once each" "ENTERPRISE FREE MAXX PRO gold" \
    "$(sql restored "SELECT string_agg(name, ' ' ORDER BY name COLLATE \"C\") FROM clerk.tiers")"
check "the worker's progress is not dumped: it starts again from a full reconciliation" "1 " \
    "$(sql restored "SELECT count(*), max(delta_watermark) FROM clerk.sync_state" | tr '|' ' ')"
check "the rate limiter goes on from the restored count" "true 4 5 gold" \
    "$(sql restored "SELECT allowed || ' ' || used || ' ' || daily_limit || ' ' || tier FROM clerk_rate_limit_consume('user_gold')")"

echo "dump_restore: $passed passed, $failed failed"
[ "$failed" = 0 ]
