#!/usr/bin/env bash
# Concurrency test of the per-user daily quotas (clerk_rate_limit_consume) under real load:
# pgbench clients calling it at once on a throwaway cluster, every result recorded in a log table,
# then the log and clerk.rate_limits checked against the tier limits.
#
#   test/ratelimit_concurrency.sh         # port 5571 (CLERK_RL_TEST_PORT to change it)
#
#   a. 16 clients x 50 calls on one FREE user: exactly 10 admitted, message_count = 10;
#   b. 16 clients x 1500 calls on 50 FREE + 20 PRO + 5 MAXX users picked at random (every user
#      called well past its limit): each user admitted exactly its tier's limit = message_count;
#   c. 16 clients x 50 calls of random cost 1..7 on one PRO user: the admitted costs add up to
#      message_count <= 100, and no admitted call took the total over 100.
#
# Needs the extension installed (make install) and pgbench (comes with the server packages). As
# root the server runs as the "postgres" OS user. Prints "ok - ..." / "not ok - ..." per
# assertion, then "ratelimit_concurrency: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"

port=${CLERK_RL_TEST_PORT:-5571}
[[ $port =~ ^[1-9][0-9]*$ ]] || { echo "ratelimit_concurrency.sh: CLERK_RL_TEST_PORT must be a port number" >&2; exit 2; }

passed=0 failed=0
# is GOT WANT NAME: one assertion, comparing two strings (test/lib.sh's check, in this order).
is() { check "$3" "$2" "$1"; }
finish() {
    echo "ratelimit_concurrency: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

use_throwaway_dir

# clerk_sync.fetch_missing_users off: every user called exists, and nothing may go to Clerk.
if ! cluster_start "$dir" "$port" "autovacuum = off" "clerk_sync.fetch_missing_users = off"; then
    not_ok "the cluster starts on port $port"
    finish
fi


# pgbench_ok NAME SCRIPT CLIENTS TRANSACTIONS_PER_CLIENT: runs pgbench (16 clients, 2 threads) and
# asserts that it processed every transaction without an error.
pgbench_ok() {
    local name=$1 script=$2 clients=$3 per_client=$4 out status processed failures
    printf '%s\n' "$script" >"$dir/$name.sql"
    chmod 644 "$dir/$name.sql"
    out=$(run_pg pgbench -n -h "$dir" -p "$port" -U postgres -f "$dir/$name.sql" \
              -c "$clients" -j 2 -t "$per_client" postgres 2>&1)
    status=$?
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    failures=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
    if [ "$status" = 0 ] && [ "$processed" = $((clients * per_client)) ] && [ "${failures:-0}" = 0 ]; then
        ok "$name: pgbench ran $processed calls from $clients clients without an error"
    else
        not_ok "$name: pgbench ran $((clients * per_client)) calls from $clients clients without an error" \
               "exit status $status"$'\n'"$out"
    fi
}

if setup=$(psql_q 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION clerk_sync;
-- every call's result, as the client saw it
CREATE TABLE rl_log (
    user_id     text NOT NULL,
    cost        int NOT NULL,
    allowed     boolean,
    used        int,
    daily_limit int,
    reason      text
);
SELECT count(clerk_sync_user('user_free', 'free@example.com', tier => 'FREE'));
-- part b: rl_1..rl_50 FREE, rl_51..rl_70 PRO, rl_71..rl_75 MAXX
SELECT count(clerk_sync_user('rl_' || i, 'rl' || i || '@example.com',
                             tier => CASE WHEN i <= 50 THEN 'FREE' WHEN i <= 70 THEN 'PRO' ELSE 'MAXX' END))
  FROM generate_series(1, 75) AS i;
SELECT count(clerk_sync_user('user_mixed', 'mixed@example.com', tier => 'PRO'));
SQL
); then
    ok "setup: CREATE EXTENSION clerk_sync and 77 users"
else
    not_ok "setup: CREATE EXTENSION clerk_sync and 77 users" "$setup"
    finish
fi

# ---------------------------------------------------------------------------------------------
# a. 16 clients hammering one FREE user (limit 10): 800 calls, exactly 10 admitted.
# ---------------------------------------------------------------------------------------------
pgbench_ok a_one_free_user "
INSERT INTO rl_log (user_id, cost, allowed, used, daily_limit, reason)
SELECT 'user_free', 1, allowed, used, daily_limit, reason FROM clerk_rate_limit_consume('user_free');" 16 50

is "$(psql_q -c "SELECT count(*) FILTER (WHERE allowed) || ' of ' || count(*) FROM rl_log")" "10 of 800" \
   "a: exactly 10 of the 800 calls on one FREE user were admitted"
is "$(psql_q -c "SELECT message_count FROM clerk.rate_limits WHERE user_id = 'user_free'")" 10 \
   "a: clerk.rate_limits.message_count = 10"
is "$(psql_q -c "SELECT string_agg(used::text, ',' ORDER BY used) FROM rl_log WHERE allowed")" \
   "1,2,3,4,5,6,7,8,9,10" \
   "a: the admitted calls saw used = 1..10, each once (none read a stale count)"
is "$(psql_q -c "SELECT count(*) FROM rl_log
                  WHERE NOT allowed AND NOT (used = 10 AND daily_limit = 10 AND reason = 'limit_exceeded')")" 0 \
   "a: every denied call reported used 10 of 10, reason limit_exceeded"

# ---------------------------------------------------------------------------------------------
# b. 75 users at once, 16 clients picking them at random: 24,000 calls. A tier is picked first,
# then one of its users, so that each user gets calls in proportion to its tier's limit: about
# 160 per FREE user (limit 10), 400 per PRO user (100), 1,600 per MAXX user (1,000).
# ---------------------------------------------------------------------------------------------
psql_q -c "TRUNCATE rl_log"
pgbench_ok b_many_users "
\\set k random(1, 3)
\\set u case when :k = 1 then random(1, 50) when :k = 2 then 50 + random(1, 20) else 70 + random(1, 5) end
INSERT INTO rl_log (user_id, cost, allowed, used, daily_limit, reason)
SELECT 'rl_' || :u, 1, allowed, used, daily_limit, reason FROM clerk_rate_limit_consume('rl_' || :u);" 16 1500

per_user="
WITH u AS (
    SELECT u.id, t.daily_limit AS tier_limit, r.message_count,
           count(l.*) AS calls,
           count(l.*) FILTER (WHERE l.allowed) AS admitted,
           count(DISTINCT l.used) FILTER (WHERE l.allowed) AS distinct_used,
           max(l.used) FILTER (WHERE l.allowed) AS max_used
      FROM clerk.users u JOIN clerk.tiers t ON t.name = u.tier
      JOIN clerk.rate_limits r ON r.user_id = u.id
      LEFT JOIN rl_log l ON l.user_id = u.id
     WHERE u.id LIKE 'rl\\_%'
     GROUP BY u.id, t.daily_limit, r.message_count)"
is "$(psql_q -c "$per_user SELECT count(*) || ' users, fewest calls over limit: ' || min(calls - tier_limit) FROM u" |
      sed -E 's/over limit: [1-9][0-9]*$/over limit: > 0/')" \
   "75 users, fewest calls over limit: > 0" \
   "b: all 75 users were called more times than their limit"
bad=$(psql_q -F ' ' -c "$per_user SELECT id, tier_limit, admitted, message_count FROM u
                         WHERE admitted <> tier_limit OR message_count <> tier_limit ORDER BY id")
if [ -z "$bad" ]; then
    ok "b: every user admitted exactly its tier limit (10/100/1000), and message_count = that limit"
else
    not_ok "b: every user admitted exactly its tier limit (10/100/1000), and message_count = that limit" \
           "user limit admitted message_count:"$'\n'"$bad"
fi
is "$(psql_q -c "$per_user SELECT count(*) FROM u WHERE distinct_used <> admitted OR max_used <> tier_limit")" 0 \
   "b: each user's admitted calls saw used = 1..limit, each once"
is "$(psql_q -c "SELECT tier || ' ' || count(*) FILTER (WHERE allowed)
                   FROM rl_log l JOIN clerk.users u ON u.id = l.user_id GROUP BY tier ORDER BY tier" | paste -sd ' ')" \
   "FREE 500 MAXX 5000 PRO 2000" \
   "b: admitted per tier: FREE 50x10, MAXX 5x1000, PRO 20x100"
is "$(psql_q -c "SELECT count(*) FROM rl_log
                  WHERE NOT allowed AND NOT (used = daily_limit AND reason = 'limit_exceeded')")" 0 \
   "b: every denied call reported its user at the limit, reason limit_exceeded"

# ---------------------------------------------------------------------------------------------
# c. Mixed costs: 800 calls of random cost 1..7 on one PRO user (limit 100).
# ---------------------------------------------------------------------------------------------
psql_q -c "TRUNCATE rl_log"
pgbench_ok c_mixed_costs "
\\set c random(1, 7)
INSERT INTO rl_log (user_id, cost, allowed, used, daily_limit, reason)
SELECT 'user_mixed', :c, allowed, used, daily_limit, reason FROM clerk_rate_limit_consume('user_mixed', :c);" 16 50

read -r admitted_sum admitted_n stored <<<"$(psql_q -F ' ' -c "
    SELECT coalesce(sum(cost) FILTER (WHERE allowed), 0), count(*) FILTER (WHERE allowed),
           (SELECT message_count FROM clerk.rate_limits WHERE user_id = 'user_mixed')
      FROM rl_log")"
if [ "${admitted_sum:-x}" -le 100 ] 2>/dev/null; then
    ok "c: the admitted costs add up to $admitted_sum <= 100 ($admitted_n calls admitted)"
else
    not_ok "c: the admitted costs add up to <= 100" "got: ${admitted_sum:-nothing} ($admitted_n calls)"
fi
is "$stored" "$admitted_sum" "c: clerk.rate_limits.message_count = the sum of the admitted costs"
# Taken in the order of the totals they reported, each admitted call's total is the previous
# admitted total plus its own cost: no two admitted calls saw the same total, none skipped one,
# and the last is <= 100, so no admitted call took the total over.
is "$(psql_q -c "SELECT count(*) FROM (
                     SELECT used, sum(cost) OVER (ORDER BY used) AS running FROM rl_log WHERE allowed) s
                  WHERE used <> running OR used > 100")" 0 \
   "c: each admitted call's total = the previous total + its cost, never over 100"
is "$(psql_q -c "SELECT count(*) FROM rl_log
                  WHERE NOT allowed AND NOT (used + cost > 100 AND reason = 'limit_exceeded')")" 0 \
   "c: every denied call did not fit (its used + cost > 100), reason limit_exceeded"
is "$stored" 100 "c: the quota was used up to exactly 100 (calls that fitted were admitted)"

finish
