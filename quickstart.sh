#!/usr/bin/env bash
# clerk_sync in one command, on a fresh machine:
#   ./quickstart.sh        installs what is missing, builds and installs the extension, starts a
#                          throwaway cluster with the background worker preloaded, the bundled
#                          fake Clerk API with 3,000 users (or the real Clerk API when
#                          CLERK_SECRET_KEY is set), backfills with clerk_sync_all(), sends signed
#                          webhooks over HTTP through the Node forwarder, and shows the tables
#   ./quickstart.sh stop   stops and removes everything it started
set -euo pipefail
cd "$(dirname "$0")"
. test/lib.sh

DIR=${CLERK_QUICKSTART_DIR:-/tmp/clerk_sync-quickstart}
PORT=${CLERK_QUICKSTART_PORT:-5433}
FAKE_PORT=$((PORT + 100))
FORWARDER_PORT=$((PORT + 101))

stop_all() {
    for f in forwarder.pid fake.pid; do
        [ -f "$DIR/$f" ] && kill "$(cat "$DIR/$f")" 2>/dev/null || true
    done
    cluster_stop "$DIR"
    rm -rf "$DIR"
}
if [ "${1:-}" = stop ]; then
    stop_all
    echo "stopped and removed $DIR"
    exit 0
fi

echo "== installing dependencies, building and installing clerk_sync"
bash test/install-deps.sh
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
make -s -j2 >/dev/null
$sudo make -s install >/dev/null
(cd examples/node-forwarder && npm ci --no-audit --no-fund --silent >/dev/null)

[ -d "$DIR" ] && stop_all
mkdir -p "$DIR" && { [ "$(id -u)" != 0 ] || chown postgres: "$DIR"; }
chmod 755 "$DIR"

if [ -n "${CLERK_SECRET_KEY:-}" ]; then
    echo "== using the real Clerk API (CLERK_SECRET_KEY is set; it goes to the server's environment only)"
    api_url=https://api.clerk.com/v1
else
    echo "== starting the fake Clerk API with 3,000 users on port $FAKE_PORT"
    fake_clerk_start "$FAKE_PORT" --users 3000
    echo "$FAKE_CLERK_PID" >"$DIR/fake.pid"
    api_url="http://127.0.0.1:$FAKE_PORT/v1"
    export CLERK_SECRET_KEY=sk_test_quickstart
fi

echo "== starting a throwaway cluster in $DIR (port $PORT) with the worker preloaded"
# A signing secret made for this cluster; in production, Clerk's dashboard gives it to you.
secret="whsec_$(openssl rand -base64 24)"
cluster_start "$DIR" "$PORT" "clerk_sync.webhook_secret = '$secret'" "clerk_sync.api_url = '$api_url'" \
    "clerk_sync.database = 'postgres'" "clerk_sync.sync_interval = '1min'"
psql_q() { run_pg psql -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_q -c 'CREATE EXTENSION clerk_sync' \
       -c 'CREATE ROLE clerk_webhook LOGIN' \
       -c 'GRANT EXECUTE ON FUNCTION clerk_apply_event(text, jsonb) TO clerk_webhook'

echo "== SELECT * FROM clerk_sync_all()"
psql_q -c "INSERT INTO clerk.tiers VALUES ('gold', 5) ON CONFLICT DO NOTHING"  # a tier the fake's users name
psql_q -c 'SELECT * FROM clerk_sync_all()'

echo "== starting the Node forwarder on port $FORWARDER_PORT, logged in as clerk_webhook"
database_url="postgresql://clerk_webhook@localhost:$PORT/postgres"
PORT=$FORWARDER_PORT DATABASE_URL=$database_url node examples/node-forwarder/server.mjs >"$DIR/forwarder.log" 2>&1 &
echo $! >"$DIR/forwarder.pid"
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$FORWARDER_PORT/healthz" && break; sleep 0.1; done

# deliver NAME ID BODY [SENT]: signs BODY as Svix does and POSTs it (or SENT, to show a tampered
# delivery) to the forwarder, as Clerk would.
deliver() {
    local name=$1 id=$2 body=$3 sent=${4:-$3} headers answer
    headers=$(svix_headers "$secret" "$id" "$body")
    answer=$(curl -s -w ' HTTP %{http_code}' -X POST "http://127.0.0.1:$FORWARDER_PORT/" \
        -H 'content-type: application/json' \
        -H "svix-id: $(node -e 'console.log(JSON.parse(process.argv[1])["svix-id"])' "$headers")" \
        -H "svix-timestamp: $(node -e 'console.log(JSON.parse(process.argv[1])["svix-timestamp"])' "$headers")" \
        -H "svix-signature: $(node -e 'console.log(JSON.parse(process.argv[1])["svix-signature"])' "$headers")" \
        --data-binary "$sent")
    printf '  %-46s -> %s\n' "$name" "$answer"
}
user() {  # user ID UPDATED_MS EMAIL FIRST METADATA: a Clerk User object (primary email second)
    local addresses='[]' primary=null
    if [ -n "$3" ]; then
        addresses="[{\"id\":\"idn_old_$1\",\"email_address\":\"old-$3\"},{\"id\":\"idn_$1\",\"email_address\":\"$3\"}]"
        primary="\"idn_$1\""
    fi
    printf '{"object":"user","id":"%s","first_name":"%s","last_name":"Example","username":null,"image_url":"https://img.clerk.com/%s","primary_email_address_id":%s,"email_addresses":%s,"public_metadata":%s,"created_at":1767225600000,"updated_at":%s}' \
        "$1" "$4" "$1" "$primary" "$addresses" "$5" "$2"
}
event() { printf '{"data":%s,"object":"event","type":"%s","timestamp":%s,"instance_id":"ins_quickstart"}' "$2" "$1" "$3"; }

echo "== signed Clerk webhooks, over HTTP, through the forwarder"
deliver "user.created  ada (tier PRO)"              msg_1 "$(event user.created "$(user user_ada 1767225600000 ada@example.com Ada '{"tier":"PRO"}')" 1767225600000)"
deliver "user.created  grace"                       msg_2 "$(event user.created "$(user user_grace 1767225600000 grace@example.com Grace '{}')" 1767225600000)"
deliver "user.created  linus (phone only)"          msg_3 "$(event user.created "$(user user_linus 1767225600000 '' Linus '{}')" 1767225600000)"
deliver "user.updated  grace (new email)"           msg_4 "$(event user.updated "$(user user_grace 1767225660000 grace@clerk.dev Grace '{}')" 1767225660000)"
deliver "user.updated  grace (older, late)"         msg_5 "$(event user.updated "$(user user_grace 1767225630000 grace@old.dev Grace '{}')" 1767225630000)"
deliver "user.updated  grace (Svix retry of msg_4)" msg_4 "$(event user.updated "$(user user_grace 1767225660000 grace@clerk.dev Grace '{}')" 1767225660000)"
deliver "user.deleted  ada"                         msg_6 "$(event user.deleted '{"object":"user","id":"user_ada","deleted":true}' 1767225700000)"
deliver "user.updated  ada (after the delete)"      msg_7 "$(event user.updated "$(user user_ada 1767225650000 ada@example.com Ada '{}')" 1767225650000)"
deliver "session.created"                           msg_8 "$(event session.created '{"id":"sess_1"}' 1767225700000)"
eve=$(event user.created "$(user user_eve 1767225600000 eve@example.com Eve '{}')" 1767225600000)
deliver "a tampered body"                           msg_9 "$eve" "${eve/eve@/mallory@}"

echo "== clerk.users (a few rows of $(psql_q -At -c 'SELECT count(*) FROM clerk.users'))"
psql_q -c "SELECT id, email, first_name, tier, clerk_updated_at FROM clerk.users ORDER BY id IN ('user_grace') DESC, id LIMIT 6"
echo "== clerk.rate_limits, and a quota in use"
psql_q -c "SELECT allowed, used, daily_limit, remaining, reset_at FROM clerk_rate_limit_consume('user_grace', 3)"
echo "== clerk.webhook_events (the inbox)"
psql_q -c "SELECT svix_id, event_type, outcome, user_id, detail FROM clerk.webhook_events ORDER BY svix_id"
echo "== the background worker: woken up now instead of in a minute"
psql_q -At -c "SELECT clerk_sync_wakeup()" >/dev/null
for _ in $(seq 1 50); do
    [ "$(psql_q -At -c "SELECT count(*) FROM clerk.sync_runs WHERE kind <> 'manual' AND status <> 'running'")" -gt 0 ] && break
    sleep 0.2
done
echo "== clerk.sync_runs and clerk.sync_status"
psql_q -c "SELECT kind, status, synced, skipped, failed, deleted, pages, requests FROM clerk.sync_runs ORDER BY id"
psql_q -x -c "SELECT worker_pid, state, next_run_at, last_full_at, last_error, watermark, rate_budget_per_10s FROM clerk.sync_status"

cat <<EOT
== done. Connect with:
  $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )psql -h $DIR -p $PORT -U postgres
The forwarder listens on http://127.0.0.1:$FORWARDER_PORT/ (its log: $DIR/forwarder.log).
Stop and remove everything with:
  ./quickstart.sh stop
EOT
