#!/usr/bin/env bash
# The background worker on a real cluster with the fake Clerk: users created, updated and deleted
# in Clerk reach clerk.users through the worker alone; a killed worker comes back; an interrupted
# full pass resumes after its cursor; reloads apply; Clerk failing leads to backoff, a recorded
# error, then recovery; the shared rate budget keeps the worker and other callers under Clerk's
# limit; DROP EXTENSION and DROP DATABASE go through while the worker runs.
# Polls with deadlines; sleeps no longer than needed.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

port=${CLERK_WORKER_TEST_PORT:-5601}
fake_port=$((port + 50))
scenario="users=300"
base="http://127.0.0.1:$fake_port"
passed=0 failed=0
use_throwaway_dir

sql() { run_pg psql -X -q -A -t -h "$dir" -p "$port" -U postgres -d "${DB:-workerdb}" -c "$1" 2>&1; }
# wait_for DESCRIPTION SECONDS SQL: polls until SQL returns t
wait_for() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(sql "$3")" = t ] && { ok "$1"; return 0; }
        sleep 0.2
    done
    not_ok "$1" "not true after $2 s: $3"
    return 1
}
admin() { curl -s -X POST "$base/__admin/users" -H 'content-type: application/json' -d "$1" >/dev/null; }
reload_with() { sql "ALTER SYSTEM SET $1" >/dev/null; sql "SELECT pg_reload_conf()" >/dev/null; }
runs_ok() { sql "SELECT count(*) FROM clerk.sync_runs WHERE status = 'succeeded'"; }

fake_clerk_start "$fake_port" --users 300 || exit 1
cluster_start "$dir" "$port" "clerk_sync.database = 'workerdb'" "clerk_sync.sync_interval = 1" \
    "clerk_sync.api_url = '$base/s/$scenario/v1'" "clerk_sync.secret_key = 'sk_test_worker'" || exit 1
DB=postgres sql "CREATE DATABASE workerdb" >/dev/null
with_email=$(fake_clerk_dump "$base/s/$scenario/v1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).filter(u=>u.primary_email_address_id).length))')

echo "# the extension is not there yet: the worker waits quietly"
sleep 1.5
check "no error logged while the extension is missing" 0 "$(grep -c 'ERROR' "$dir/server.log")"
sql "CREATE EXTENSION clerk_sync" >/dev/null
wait_for "the first run (a full reconciliation) brings in every user" 30 \
    "SELECT count(*) = $with_email FROM clerk.users"
wait_for "it is recorded as a succeeded full run, and delta sweeps follow" 15 \
    "SELECT bool_or(kind = 'full' AND status = 'succeeded') AND bool_or(kind = 'delta' AND status = 'succeeded') FROM clerk.sync_runs"
check "the worker shows in pg_stat_activity" t "$(sql "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type = 'clerk_sync launcher'")"
check "clerk.sync_status names the worker, its state and the watermark" t \
    "$(sql "SELECT worker_pid > 0 AND state IS NOT NULL AND watermark IS NOT NULL AND last_full_at IS NOT NULL FROM clerk.sync_status")"

echo "# a user created, updated and deleted in Clerk, through the worker alone"
now=$(date +%s%3N)
admin "{\"scenario\":\"$scenario\",\"upsert\":[{\"id\":\"user_worker_new\",\"created_at\":$now,\"updated_at\":$now,\"first_name\":\"New\",\"primary_email_address_id\":\"idn_w\",\"email_addresses\":[{\"id\":\"idn_w\",\"email_address\":\"new@example.com\"}]}]}"
wait_for "a user created in Clerk appears" 15 "SELECT EXISTS (SELECT FROM clerk.users WHERE id = 'user_worker_new' AND email = 'new@example.com')"
admin "{\"scenario\":\"$scenario\",\"upsert\":[{\"id\":\"user_worker_new\",\"first_name\":\"Renamed\"}]}"
wait_for "an update in Clerk reaches the row" 15 "SELECT first_name = 'Renamed' FROM clerk.users WHERE id = 'user_worker_new'"
admin "{\"scenario\":\"$scenario\",\"delete\":[\"user_worker_new\"]}"
reload_with "clerk_sync.full_sync_interval = '3s'"
wait_for "a user deleted in Clerk disappears at the next full reconciliation, with a tombstone" 20 \
    "SELECT NOT EXISTS (SELECT FROM clerk.users WHERE id = 'user_worker_new') AND EXISTS (SELECT FROM clerk.deleted_users WHERE id = 'user_worker_new')"
reload_with "clerk_sync.full_sync_interval = '1h'"

echo "# pg_terminate_backend(worker): a new worker, and the next sweep completes"
old_pid=$(sql "SELECT worker_pid FROM clerk.sync_status")
sql "SELECT pg_terminate_backend($old_pid)" >/dev/null
before=$(runs_ok)
wait_for "a new worker pid appears" 15 "SELECT worker_pid IS NOT NULL AND worker_pid <> $old_pid FROM clerk.sync_status"
wait_for "and its next sweep completes" 15 "SELECT count(*) > $before FROM clerk.sync_runs WHERE status = 'succeeded'"

echo "# an interrupted full pass resumes after its cursor"
reload_with "clerk_sync.api_url = '$base/s/$scenario,slow=100,slowms=300/v1'"
reload_with "clerk_sync.page_size = 20"
sql "SELECT clerk_sync_wakeup(true)" >/dev/null
wait_for "a full pass is under way, its cursor committed page by page" 20 \
    "SELECT full_pass_cursor IS NOT NULL AND run_pid IS NOT NULL AND state LIKE 'running a full%' FROM clerk.sync_status"
sql "SELECT pg_terminate_backend(run_pid) FROM clerk.sync_status" >/dev/null
interrupted=$(sql "SELECT id FROM clerk.sync_runs WHERE kind = 'full' ORDER BY id DESC LIMIT 1")
wait_for "the interrupted run is recorded as failed" 15 "SELECT status = 'failed' FROM clerk.sync_runs WHERE id = $interrupted"
wait_for "the pass resumes and completes" 30 \
    "SELECT EXISTS (SELECT FROM clerk.sync_runs WHERE id > $interrupted AND kind = 'full' AND status = 'succeeded')"
check "the resumed run fetched only what was left" t \
    "$(sql "SELECT r.pages < ceil($((with_email + 20)) / 20.0) FROM clerk.sync_runs r WHERE id > $interrupted AND kind = 'full' AND status = 'succeeded' ORDER BY id LIMIT 1")"
check "nothing is lost" "$with_email" "$(sql "SELECT count(*) FROM clerk.users")"
reload_with "clerk_sync.api_url = '$base/s/$scenario/v1'"
reload_with "clerk_sync.page_size = 500"

echo "# a reload changes the interval"
reload_with "clerk_sync.sync_interval = 0"
wait_for "sync_interval 0 stops the periodic runs" 10 "SELECT state LIKE 'idle (sync_interval is 0)%' FROM clerk.sync_status"
before=$(runs_ok)
sleep 2.5
check "and no run happens meanwhile" "$before" "$(runs_ok)"
check "clerk_sync_wakeup() still makes it run" t "$(sql "SELECT clerk_sync_wakeup()")"
wait_for "the wakeup's run completes" 10 "SELECT count(*) > $before FROM clerk.sync_runs WHERE status = 'succeeded'"

echo "# a run's pages come over one keep-alive connection"
reload_with "clerk_sync.page_size = 20"
sleep 0.5   # the reload reaches the postmaster, which starts the next run
# each stats request is a connection of its own (curl): one between the two readings
fake_connections() { fake_clerk_stat "$base" connections; }
connections_before=$(fake_connections)
before=$(runs_ok)
sql "SELECT clerk_sync_wakeup(true)" >/dev/null
wait_for "a full pass in pages of 20 completes" 20 "SELECT count(*) > $before FROM clerk.sync_runs WHERE status = 'succeeded'"
check "it took the 15 pages of the fake's 300 users" t \
    "$(sql "SELECT pages >= 15 FROM clerk.sync_runs WHERE kind = 'full' ORDER BY id DESC LIMIT 1")"
check "over one connection" 1 $(( $(fake_connections) - connections_before - 1 ))
reload_with "clerk_sync.page_size = 500"
reload_with "clerk_sync.sync_interval = 1"

echo "# the inbox keeps deliveries for clerk_sync.inbox_retention days (default 30; 0: all)"
inbox_row() { echo "('$1', 'user.updated', now() - interval '$2 days', 'applied', '{}')"; }
sql "INSERT INTO clerk.webhook_events (svix_id, event_type, received_at, outcome, payload)
     VALUES $(inbox_row msg_31_days 31), $(inbox_row msg_29_days 29)" >/dev/null
wait_for "a run prunes the deliveries older than 30 days and keeps the others" 10 \
    "SELECT NOT EXISTS (SELECT FROM clerk.webhook_events WHERE svix_id = 'msg_31_days')
        AND EXISTS (SELECT FROM clerk.webhook_events WHERE svix_id = 'msg_29_days')"
reload_with "clerk_sync.inbox_retention = 0"
# two runs ending after the reload: the second started after it
before=$(runs_ok)
wait_for "runs go on after a reload to inbox_retention = 0..." 10 "SELECT count(*) > $before + 1 FROM clerk.sync_runs WHERE status = 'succeeded'"
sql "INSERT INTO clerk.webhook_events (svix_id, event_type, received_at, outcome, payload)
     VALUES $(inbox_row msg_400_days 400)" >/dev/null
before=$(runs_ok)
wait_for "... and after a delivery 400 days old is added" 10 "SELECT count(*) > $before + 1 FROM clerk.sync_runs WHERE status = 'succeeded'"
check "which they keep" t "$(sql "SELECT EXISTS (SELECT FROM clerk.webhook_events WHERE svix_id = 'msg_400_days')")"
sql "DELETE FROM clerk.webhook_events WHERE svix_id LIKE 'msg\_%'" >/dev/null
reload_with "clerk_sync.inbox_retention = 30"

echo "# a delivery deleting a user while the worker writes a page with that user: the deletion wins"
victim=$(sql "SELECT id FROM clerk.users ORDER BY id LIMIT 1")
reload_with "clerk_sync.sync_interval = 0"
wait_for "(the worker is idle)" 10 "SELECT run_pid IS NULL AND state LIKE 'idle (sync_interval is 0)%' FROM clerk.sync_status"
# the delivery's transaction, held open for a while after it deleted the user
run_pg psql -X -q -h "$dir" -p "$port" -U postgres -d workerdb -c "BEGIN" \
    -c "SELECT clerk._delete_user('$victim', now())" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
delivery=$!
wait_for "the delivery holds the user's write lock" 5 \
    "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND classid = 1129073410 AND granted)"
before=$(runs_ok)
sql "SELECT clerk_sync_wakeup(true)" >/dev/null
wait_for "the worker's page waits for that lock" 5 \
    "SELECT EXISTS (SELECT FROM pg_locks l JOIN clerk.sync_status s ON l.pid = s.run_pid
                     WHERE l.locktype = 'advisory' AND l.classid = 1129073410 AND NOT l.granted)"
wait "$delivery"
wait_for "then its pass completes" 15 "SELECT count(*) > $before FROM clerk.sync_runs WHERE status = 'succeeded'"
check "and the user stays deleted, with its tombstone" "f|t" \
    "$(sql "SELECT EXISTS (SELECT FROM clerk.users WHERE id = '$victim'), EXISTS (SELECT FROM clerk.deleted_users WHERE id = '$victim')")"
sql "DELETE FROM clerk.deleted_users WHERE id = '$victim'" >/dev/null
reload_with "clerk_sync.sync_interval = 1"
sql "SELECT clerk_sync_wakeup(true)" >/dev/null
wait_for "(without the tombstone, the next full pass brings it back)" 15 "SELECT EXISTS (SELECT FROM clerk.users WHERE id = '$victim')"

echo "# Clerk answering 500s: backoff and a recorded error, then recovery"
reload_with "clerk_sync.api_url = '$base/s/$scenario,fail5xx=100/v1'"
reload_with "clerk_sync.max_retries = 0"
wait_for "the failure is recorded, and the worker backs off" 20 \
    "SELECT last_error LIKE '%HTTP 5%' AND consecutive_failures >= 1 AND state = 'backing off' FROM clerk.sync_status"
check "one log line per failed run, not a flood" t "$(sql "SELECT count(*) <= 5 FROM clerk.sync_runs WHERE status = 'failed' AND error LIKE '%HTTP 5%'")"
reload_with "clerk_sync.api_url = '$base/s/$scenario/v1'"
reload_with "clerk_sync.max_retries = 5"
sql "SELECT clerk_sync_wakeup()" >/dev/null
wait_for "it recovers" 20 "SELECT consecutive_failures = 0 AND state <> 'backing off' FROM clerk.sync_status"

echo "# one rate budget for the worker and every other caller"
reload_with "clerk_sync.api_url = '$base/s/$scenario,ratelimit=20%2F2/v1'"
reload_with "clerk_sync.rate_budget = 100"
reload_with "clerk_sync.page_size = 10"
curl -s -X POST "$base/__admin/reset" >/dev/null
sql "SELECT clerk_sync_wakeup(true)" >/dev/null
ids=$(sql "SELECT string_agg(quote_literal(id), ',') FROM (SELECT id FROM clerk.users ORDER BY id LIMIT 40) s")
sql "SELECT count(*) FROM (SELECT clerk_fetch_user(id) FROM unnest(ARRAY[$ids]) AS id) s" >/dev/null
wait_for "the worker's full pass completes alongside 40 clerk_fetch_user calls" 60 \
    "SELECT EXISTS (SELECT FROM clerk.sync_runs WHERE kind = 'full' AND status = 'succeeded' AND started_at > now() - interval '60 s' AND requests > 20)"
check "no 429 from the fake" 0 "$(fake_clerk_stat "$base" by_status.429)"
reload_with "clerk_sync.api_url = '$base/s/$scenario/v1'"
reload_with "clerk_sync.rate_budget = 0"
reload_with "clerk_sync.page_size = 500"

echo "# DROP EXTENSION and DROP DATABASE go through while the worker runs"
check "DROP EXTENSION succeeds" "DROP EXTENSION" "$(run_pg psql -X -h "$dir" -p "$port" -U postgres -d workerdb -c 'DROP EXTENSION clerk_sync CASCADE' 2>&1 | grep -v NOTICE)"
sleep 1.5
sql "CREATE EXTENSION clerk_sync" >/dev/null
wait_for "the worker picks the extension up again" 30 "SELECT count(*) = $with_email FROM clerk.users"
check "DROP DATABASE succeeds" "DROP DATABASE" "$(DB=postgres run_pg psql -X -h "$dir" -p "$port" -U postgres -d postgres -c 'DROP DATABASE workerdb' 2>&1)"
sleep 1.5
check "the worker lives on, quietly" t "$(DB=postgres sql "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'clerk_sync launcher'")"
check "no crash: the server never restarted" 0 "$(grep -c 'terminated by signal\|was terminated\|all server processes terminated' "$dir/server.log")"

echo "worker: $passed passed, $failed failed"
[ "$failed" = 0 ]
