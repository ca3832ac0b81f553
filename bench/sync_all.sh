#!/usr/bin/env bash
# Benchmark: clerk_sync_all() backfilling users from the fake Clerk API (no rate limit), against
# the database's own floor: one set-based INSERT ... SELECT ... ON CONFLICT of the same pages,
# already fetched and loaded into a table. Also the backend's peak private memory (RssAnon) during
# the sync, and optionally at a million users.
#
#   bench/sync_all.sh                     # 100,000 users, 3 runs of each
#
# Environment:
#   CLERK_BENCH_USERS     users in the fake (default 100000)
#   CLERK_BENCH_RUNS      repetitions of each measurement (default 3); medians are reported
#   CLERK_BENCH_MEMORY_USERS  if set (e.g. 1000000), one more sync of that many users, for memory
#   CLERK_BENCH_PORT      port of the throwaway cluster (default 5541); the fake uses port + 50
#
# A benchmark, not a test: targets are printed, never enforced.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../test/lib.sh"
# shellcheck source=bench/floor.sh
. "$here/floor.sh"

users=${CLERK_BENCH_USERS:-100000}
runs=${CLERK_BENCH_RUNS:-3}
port=${CLERK_BENCH_PORT:-5541}
fake_port=$((port + 50))
memory_users=${CLERK_BENCH_MEMORY_USERS:-}

use_throwaway_dir

# The fake answers without a rate limit here; the shared budget (100 requests / 10 s for an
# sk_test_ key) is lifted so that the database, not the budget, sets the pace.
cluster_start "$dir" "$port" "clerk_sync.secret_key = 'sk_test_bench'" "clerk_sync.rate_budget = 100000" \
    "clerk_sync.api_url = 'http://127.0.0.1:$fake_port/v1'" \
    "autovacuum = off" "max_wal_size = '8GB'" "shared_buffers = '1GB'"
fake_clerk_start "$fake_port" --users "$users"
psql_q -c "CREATE EXTENSION clerk_sync" -c "INSERT INTO clerk.tiers VALUES ('gold', 5)"
# warm the fake's cache of serialised users, so that the first run is not slower than the rest
fake_clerk_dump "http://127.0.0.1:$fake_port/v1" >/dev/null

echo "loading the same pages into bench.pages for the floor..."
floor_load_pages "http://127.0.0.1:$fake_port/v1"

reset_sql="TRUNCATE clerk.users, clerk.rate_limits, clerk.deleted_users, clerk.sync_runs CASCADE; CHECKPOINT"

# sync_with_memory: runs clerk_sync_all() while sampling the backend's RssAnon; prints
# "seconds peak_rss_anon_kb start_rss_anon_kb".
sync_with_memory() {
    local out pid peak=0 start=0 kb t0 t1
    out=$(mktemp)
    t0=$(date +%s.%N)
    psql_q -c "SELECT pg_backend_pid()" -c "SET client_min_messages = warning" \
        -c "SELECT total FROM clerk_sync_all()" >"$out" &
    local psql_pid=$!
    while [ ! -s "$out" ]; do sleep 0.05; done
    pid=$(head -1 "$out")
    while kill -0 "$psql_pid" 2>/dev/null; do
        kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "${kb:-0}" -gt "$peak" ] && peak=$kb
        [ "$start" = 0 ] && start=${kb:-0}
        sleep 0.1
    done
    wait "$psql_pid"
    t1=$(date +%s.%N)
    [ "$(sed -n 2p "$out")" -gt 0 ] || { echo "clerk_sync_all synced nothing" >&2; exit 1; }
    rm -f "$out"
    echo "$(echo "$t1 - $t0" | bc -l) $peak $start"
}


sync_times=() floor_times=() peaks=()
for r in $(seq 1 "$runs"); do
    psql_q -c "$reset_sql"
    read -r s peak start < <(sync_with_memory)
    sync_times+=("$s"); peaks+=("$((peak - start))")
    psql_q -c "$reset_sql"
    f=$(floor_seconds)
    floor_times+=("$f")
    printf 'run %d: clerk_sync_all %.2f s (%.0f users/s, +%d MB RssAnon), floor %.2f s (%.0f users/s)\n' \
        "$r" "$s" "$(echo "$users / $s" | bc -l)" "$((peak / 1024 - start / 1024))" "$f" "$(echo "$users / $f" | bc -l)"
done
ms=$(printf '%s\n' "${sync_times[@]}" | median)
mf=$(printf '%s\n' "${floor_times[@]}" | median)
mp=$(printf "%s\n" "${peaks[@]}" | median); mp=${mp%.*}
echo
printf 'users: %d, runs: %d (medians)\n' "$users" "$runs"
printf '  clerk_sync_all : %8.0f users/s  (%.2f s, including HTTP from the fake)\n' "$(echo "$users / $ms" | bc -l)" "$ms"
printf '  floor          : %8.0f users/s  (%.2f s, one INSERT ... SELECT ... ON CONFLICT of pre-loaded pages)\n' "$(echo "$users / $mf" | bc -l)" "$mf"
printf '  speed vs floor : %.2f   (target: at least 0.5)\n' "$(echo "$mf / $ms" | bc -l)"
printf '  backend memory growth during the sync (RssAnon peak - start): %d MB\n' "$((mp / 1024))"

if [ -n "$memory_users" ]; then
    fake_clerk_stop
    fake_clerk_start "$fake_port" --users "$memory_users" --cache-mb 0
    psql_q -c "$reset_sql"
    read -r s peak start < <(sync_with_memory)
    printf '  at %d users: %.1f s (%.0f users/s), backend memory growth %d MB (target: under 64 MB)\n' \
        "$memory_users" "$s" "$(echo "$memory_users / $s" | bc -l)" "$(( (peak - start) / 1024 ))"
fi
