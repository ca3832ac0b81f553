#!/usr/bin/env bash
# Benchmark: the background worker bringing users in from the fake Clerk API on its own, with the
# fake enforcing Clerk's production rate limit (1000 requests / 10 s per key) and the worker
# using an sk_live_ key (so its shared budget is that limit). Reports the time from CREATE
# EXTENSION to the first full reconciliation's end, against the minimum the limit allows
# (users / 500 pages, at 100 pages a second), and the fake's count of 429 answers. Then, for
# scale, the database's own floor on this machine (bench/floor.sh): the same users written by one
# bare statement per table, into the same emptied tables.
#
#   bench/worker_backfill.sh                 # 1,000,000 users
#
# Environment: CLERK_BENCH_USERS (default 1000000), CLERK_BENCH_PORT (default 5611; the fake
# uses port + 50). A benchmark, not a test: the targets are printed, never enforced.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../test/lib.sh"
# shellcheck source=bench/floor.sh
. "$here/floor.sh"

users=${CLERK_BENCH_USERS:-1000000}
port=${CLERK_BENCH_PORT:-5611}
fake_port=$((port + 50))
use_throwaway_dir

fake_clerk_start "$fake_port" --users "$users" --rate-limit 1000/10 --cache-mb 0
curl -s -X POST "http://127.0.0.1:$fake_port/__admin/warm" -d "{\"scenario\":\"users=$users\"}" >/dev/null
cluster_start "$dir" "$port" "clerk_sync.database = 'postgres'" "clerk_sync.sync_interval = 1" \
    "clerk_sync.api_url = 'http://127.0.0.1:$fake_port/v1'" "clerk_sync.secret_key = 'sk_live_bench'" \
    "autovacuum = off" "max_wal_size = '8GB'" "shared_buffers = '1GB'"
curl -s -X POST "http://127.0.0.1:$fake_port/__admin/reset" >/dev/null

t0=$(date +%s.%N)
psql_q -c "CREATE EXTENSION clerk_sync" -c "INSERT INTO clerk.tiers VALUES ('gold', 5)"
until [ "$(psql_q -c "SELECT count(*) FROM clerk.sync_runs WHERE kind = 'full' AND status = 'succeeded'")" = 1 ]; do
    sleep 0.5
done
t1=$(date +%s.%N)
psql_q -c "SELECT 'run: ' || synced || ' synced, ' || skipped || ' skipped, ' || pages || ' pages, ' || requests || ' requests, ' || rate_limited || ' answered 429, ' || round(extract(epoch FROM finished_at - started_at)::numeric, 1) || ' s' FROM clerk.sync_runs WHERE kind = 'full'"
rate_limited=$(fake_clerk_stat "http://127.0.0.1:$fake_port" by_status.429)
elapsed=$(echo "$t1 - $t0" | bc -l)
minimum=$(echo "$users / 500 / 100" | bc -l)

# The floor, fetched from the same users without the rate limit (and so without touching the
# counts above), written into emptied tables, with the worker stopped.
psql_q -c "ALTER SYSTEM SET clerk_sync.sync_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
until [ "$(psql_q -c "SELECT run_pid IS NULL AND state LIKE 'idle (sync_interval is 0)%' FROM clerk.sync_status")" = t ]; do
    sleep 0.5
done
floor_load_pages "http://127.0.0.1:$fake_port/s/users=$users,ratelimit=0/v1"
psql_q -c "TRUNCATE clerk.users, clerk.rate_limits CASCADE" -c "CHECKPOINT"
floor=$(floor_seconds)

printf 'users: %d\n' "$users"
printf '  worker, from CREATE EXTENSION to its first full pass done: %6.1f s\n' "$elapsed"
printf '  minimum at 1000 requests / 10 s:                          %6.1f s   worker / minimum %.2f (target <= 1.1)\n' \
    "$minimum" "$(echo "$elapsed / $minimum" | bc -l)"
printf '  database floor, the same writes by bare statements:       %6.1f s   worker / floor %.2f\n' \
    "$floor" "$(echo "$elapsed / $floor" | bc -l)"
printf '  429 answers from the fake: %s (target: 0)\n' "$rate_limited"
