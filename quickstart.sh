#!/usr/bin/env bash
# clerk_sync in one command, on a fresh machine:
#   ./quickstart.sh        install what is missing, build and install the extension, start a
#                          throwaway cluster with clerk_sync preloaded, apply a handful of signed
#                          Clerk webhooks, and show the tables
#   ./quickstart.sh stop   stop the cluster and remove everything it created
set -euo pipefail
cd "$(dirname "$0")"
. test/lib.sh

DIR=${CLERK_QUICKSTART_DIR:-/tmp/clerk_sync-quickstart}
PORT=${CLERK_QUICKSTART_PORT:-5433}

if [ "${1:-}" = stop ]; then
    cluster_stop "$DIR"
    rm -rf "$DIR"
    echo "stopped and removed $DIR"
    exit 0
fi

echo "== installing dependencies, building and installing clerk_sync"
bash test/install-deps.sh
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
make -s -j2 >/dev/null
$sudo make -s install >/dev/null

echo "== starting a throwaway cluster in $DIR (port $PORT)"
[ -d "$DIR" ] && { cluster_stop "$DIR"; rm -rf "$DIR"; }
mkdir -p "$DIR" && [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
chmod 755 "$DIR"
# A signing secret made for this cluster; in production, Clerk's dashboard gives it to you.
secret="whsec_$(openssl rand -base64 24)"
cluster_start "$DIR" "$PORT" "clerk_sync.webhook_secret = '$secret'"

psql_q() { run_pg psql -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_q -c 'CREATE EXTENSION clerk_sync'

# deliver NAME ID BODY: signs BODY like Svix and applies it the way an edge function does.
deliver() {
    local name=$1 id=$2 body=$3 outcome
    outcome=$(echo "SELECT clerk_apply_event(:'body', :'headers'::jsonb)" |
              psql_q -A -t -v body="$body" -v headers="$(svix_headers "$secret" "$id" "$body")")
    printf '  %-48s -> %s\n' "$name" "$outcome"
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

echo "== applying signed Clerk webhooks"
deliver "user.created  ada (tier PRO)"              msg_1 "$(event user.created "$(user user_ada 1767225600000 ada@example.com Ada '{"tier":"PRO"}')" 1767225600000)"
deliver "user.created  grace"                       msg_2 "$(event user.created "$(user user_grace 1767225600000 grace@example.com Grace '{}')" 1767225600000)"
deliver "user.created  linus (phone only)"          msg_3 "$(event user.created "$(user user_linus 1767225600000 '' Linus '{}')" 1767225600000)"
deliver "user.created  ken"                         msg_4 "$(event user.created "$(user user_ken 1767225600000 ken@example.com Ken '{}')" 1767225600000)"
deliver "user.updated  grace (new email)"           msg_5 "$(event user.updated "$(user user_grace 1767225660000 grace@clerk.dev Grace '{}')" 1767225660000)"
deliver "user.updated  grace (older, late)"         msg_6 "$(event user.updated "$(user user_grace 1767225630000 grace@old.dev Grace '{}')" 1767225630000)"
deliver "user.updated  grace (Svix retry of msg_5)" msg_5 "$(event user.updated "$(user user_grace 1767225660000 grace@clerk.dev Grace '{}')" 1767225660000)"
deliver "user.deleted  ken"                         msg_7 "$(event user.deleted '{"object":"user","id":"user_ken","deleted":true}' 1767225700000)"
deliver "user.updated  ken (after the delete)"      msg_8 "$(event user.updated "$(user user_ken 1767225650000 ken@example.com Ken '{}')" 1767225650000)"
deliver "session.created"                           msg_9 "$(event session.created '{"id":"sess_1"}' 1767225700000)"

echo "== clerk.users"
psql_q -c "SELECT id, email, first_name, tier, clerk_updated_at FROM clerk.users ORDER BY id"
echo "== clerk.rate_limits"
psql_q -c "SELECT user_id, message_count, t.daily_limit FROM clerk.rate_limits r JOIN clerk.users u ON u.id = r.user_id JOIN clerk.tiers t ON t.name = u.tier ORDER BY user_id"
echo "== clerk.webhook_events (the inbox) and clerk.deleted_users (tombstones)"
psql_q -c "SELECT svix_id, event_type, outcome, user_id, detail FROM clerk.webhook_events ORDER BY svix_id"
psql_q -c "SELECT id, deleted_at FROM clerk.deleted_users"

cat <<EOT
== done. Connect with:
  $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )psql -h $DIR -p $PORT -U postgres
Stop and remove everything with:
  ./quickstart.sh stop
EOT
