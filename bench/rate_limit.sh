#!/usr/bin/env bash
# Benchmark: clerk_rate_limit_consume(user_id) throughput against the floor, a bare single-row
# UPDATE ... RETURNING of the same counter in the same table.
#
#   bench/rate_limit.sh               # 10,000 users, 7 runs of 10 s per measurement, port 5581
#
# Environment:
#   CLERK_BENCH_USERS    number of users (default 10000), each call picks one at random
#   CLERK_BENCH_RUNS     repetitions of each measurement (default 7); medians are reported
#   CLERK_BENCH_SECONDS  duration of each measurement, pgbench -T (default 10)
#   CLERK_BENCH_PORT     port of the throwaway cluster (default 5581)
#
# The users are in a tier "BENCH" added for the bench, with a daily limit of 2,000,000,000: every
# call is admitted (a denied call takes another path: the UPDATE matches nothing, then a report
# query runs), yet the limit check is evaluated as it is for FREE/PRO/MAXX. ENTERPRISE's NULL
# limit would skip it (`daily_limit IS NULL OR ...` short-circuits) and measure a path only
# unlimited users take.
#
# Both statements run with -M prepared, one statement per transaction (one round trip), 1 and 2
# clients (-j = clients). The order alternates between runs, so that drift does not favour either.
#
# Needs the extension installed (make install) and pgbench. As root the server runs as the
# "postgres" OS user. A benchmark, not a test: the target (floor/consume <= 1.5) is printed,
# never enforced. It exits non-zero only when something broke (setup, a pgbench error, or a call
# that was not admitted: after each measurement the counters must have grown by exactly the
# number of transactions pgbench reports).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh source-path=SCRIPTDIR/..
. "$here/../test/lib.sh"

users=${CLERK_BENCH_USERS:-10000}
runs=${CLERK_BENCH_RUNS:-7}
seconds=${CLERK_BENCH_SECONDS:-10}
port=${CLERK_BENCH_PORT:-5581}
for v in users runs seconds port; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "rate_limit.sh: $v must be a positive integer" >&2; exit 2; }
done
bench_limit=2000000000

use_throwaway_dir

# fetch_missing_users off: every user called exists; a bench must never call out to Clerk.
cluster_start "$dir" "$port" \
    "autovacuum = off" \
    "max_wal_size = '4GB'" \
    "clerk_sync.fetch_missing_users = off" ||
    { echo "rate_limit.sh: could not start the cluster" >&2; exit 1; }


echo "clerk_sync rate-limit benchmark: $users users (tier BENCH, limit $bench_limit), $runs runs of ${seconds} s per measurement, $(nproc) CPUs, PostgreSQL $(pg_config --version | awk '{print $2}')"
t0=$SECONDS

psql_q -v users="$users" -v bench_limit="$bench_limit" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION clerk_sync;
INSERT INTO clerk.tiers (name, daily_limit) VALUES ('BENCH', :bench_limit);
SELECT count(clerk_sync_user('user_' || i, 'user' || i || '@example.com', tier => 'BENCH'))
  FROM generate_series(1, :users) AS i;
VACUUM ANALYZE clerk.users, clerk.rate_limits;
SQL
n=$(psql_q -c "SELECT count(*) FROM clerk.users u JOIN clerk.rate_limits r ON r.user_id = u.id WHERE u.tier = 'BENCH'")
[ "$n" = "$users" ] || { echo "rate_limit.sh: $n users with a rate-limit row, expected $users" >&2; exit 1; }

# The same user id expression in both (a random user of 1..N, built from pgbench's integer).
cat >"$dir/consume.sql" <<SQL
\\set id random(1, $users)
SELECT * FROM clerk_rate_limit_consume('user_' || :id);
SQL
cat >"$dir/floor.sql" <<SQL
\\set id random(1, $users)
UPDATE clerk.rate_limits SET message_count = message_count + 1, updated_at = now() WHERE user_id = 'user_' || :id RETURNING message_count;
SQL
chmod 644 "$dir/consume.sql" "$dir/floor.sql"

# Sanity: a consume is admitted with the BENCH limit, and the floor is an index lookup.
got=$(psql_q -c "SELECT allowed || ' ' || daily_limit || ' ' || tier FROM clerk_rate_limit_consume('user_1')")
[ "$got" = "true $bench_limit BENCH" ] || { echo "rate_limit.sh: consume on user_1 returned '$got'" >&2; exit 1; }
plan=$(psql_q -c "EXPLAIN UPDATE clerk.rate_limits SET message_count = message_count + 1, updated_at = now()
                          WHERE user_id = 'user_' || 1 RETURNING message_count")
grep -q 'Index Scan' <<<"$plan" || { echo "rate_limit.sh: the floor is not an index lookup:"; echo "$plan"; exit 1; } >&2

total_count() { psql_q -c "SELECT sum(message_count) FROM clerk.rate_limits"; }

phase_tps=""
# run_phase KIND CLIENTS DURATION: one measurement; checks that every transaction incremented a
# counter by one (so every consume was admitted); sets phase_tps.
run_phase() {
    local kind=$1 clients=$2 duration=$3 out before after processed failures
    psql_q -c "VACUUM clerk.rate_limits" -c "CHECKPOINT"
    before=$(total_count)
    out=$(pgbench_run -M prepared -f "$dir/$kind.sql" -c "$clients" -j "$clients" -T "$duration" 2>&1) || {
        echo "rate_limit.sh: pgbench ($kind, $clients clients) failed:" >&2
        echo "$out" >&2
        exit 1
    }
    after=$(total_count)
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    failures=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
    phase_tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
    if [ -z "$processed" ] || [ -z "$phase_tps" ] || [ "${failures:-0}" != 0 ]; then
        echo "rate_limit.sh: unexpected pgbench output ($kind, $clients clients):" >&2
        echo "$out" >&2
        exit 1
    fi
    if [ $(( after - before )) != "$processed" ]; then
        echo "rate_limit.sh: $kind with $clients clients: $processed transactions but the counters grew by $(( after - before ))" >&2
        exit 1
    fi
    phase_tps=$(printf '%.0f' "$phase_tps")
}

# Warm-up (not reported): shared buffers, and the first run's connections start like the rest.
for kind in consume floor; do run_phase "$kind" 2 2; done

declare -A results   # results[kind,clients] = space-separated tps of each run
declare -A ratios    # ratios[clients] = space-separated floor/consume of each run
declare -A this_run  # this_run[kind] = tps of this run's measurement
for (( r = 1; r <= runs; r++ )); do
    if (( r % 2 )); then order="consume floor"; else order="floor consume"; fi
    line="run $r/$runs:"
    for c in 1 2; do
        for kind in $order; do
            run_phase "$kind" "$c" "$seconds"
            results[$kind,$c]+="$phase_tps "
            this_run[$kind]=$phase_tps
            line+=$(printf '  %s c%d %7d' "$kind" "$c" "$phase_tps")
        done
        ratio=$(awk -v f="${this_run[floor]}" -v a="${this_run[consume]}" 'BEGIN {printf "%.2f", f / a}')
        ratios[$c]+="$ratio "
        line+=$(printf ' (%.2fx)' "$ratio")
    done
    echo "$line tps"
done


echo
# The ratio reported is the median of each run's ratio: a run measures both statements back to
# back, so a drift of the shared machine's speed between runs cancels out of it.
echo "Medians over $runs runs of ${seconds} s, $users users, transactions/s (one call per transaction):"
printf '  %-8s %12s %12s %14s   %s\n' clients consume floor floor/consume target
for c in 1 2; do
    a=$(median <<<"${results[consume,$c]}")
    f=$(median <<<"${results[floor,$c]}")
    ratio=$(median <<<"${ratios[$c]}")
    verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 1.5) ? "<= 1.5 met" : "<= 1.5 NOT met"}')
    printf '  %-8s %12s %12s %13sx   %s\n' "$c" "$a" "$f" "$ratio" "$verdict"
done
echo "(every consume was admitted: the counters grew by exactly the transactions processed; total $(( SECONDS - t0 )) s)"
