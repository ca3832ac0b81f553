#!/usr/bin/env bash
# Secret handling on real clusters, in the configurations pg_regress's single temp instance cannot
# show: clerk_sync not preloaded, no secret at all, the secret from the environment only.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

port=${CLERK_SECRETS_TEST_PORT:-5531}
secret='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'   # Svix's published test vector
passed=0 failed=0
dir=
cleanup() { [ -n "$dir" ] && { cluster_stop "$dir"; rm -rf "$dir"; }; dir=; }
trap cleanup EXIT

check_contains() {  # check_contains DESCRIPTION NEEDLE HAYSTACK
    case "$3" in *"$2"*) check "$1" "$2" "$2" ;; *) check "$1" "contains: $2" "$3" ;; esac
}

sql() {  # sql ROLE STATEMENT: prints the result or "ERROR <sqlstate>: message"
    run_pg psql -X -q -A -t -h "$dir" -p "$port" -U "$1" -d postgres -v ON_ERROR_STOP=1 \
        -v VERBOSITY=sqlstate -c "\\set VERBOSITY verbose" -c "$2" 2>&1 |
        sed -E 's/^ERROR:  ([0-9A-Z]{5}): /ERROR \1: /' | grep -v '^LOCATION:' | head -3
}

start() {  # start CONFIG_LINE...: a fresh cluster with the extension created and a plain role
    cleanup
    dir=$(new_pg_dir)
    cluster_start "$dir" "$port" "$@" || exit 1
    sql postgres "CREATE EXTENSION clerk_sync; CREATE ROLE app LOGIN; GRANT EXECUTE ON FUNCTION clerk_apply_event(text, jsonb) TO app;" >/dev/null
}

# A signed delivery of an unknown event type (outcome "ignored"), made now.
signed_call() {
    local body='{"type":"ping.test","data":{}}'
    echo "SELECT clerk_apply_event('$body', '$(svix_headers "$secret" "msg_$RANDOM$RANDOM" "$body")')"
}

echo "# 1. secret in the config, clerk_sync NOT preloaded: refused, with the fix in the message"
start "shared_preload_libraries = ''" "clerk_sync.webhook_secret = '$secret'"
out=$(sql app "$(signed_call)")
check_contains "apply refuses a config secret without preloading (55000)" "ERROR 55000: clerk_sync.webhook_secret is set in the server configuration, but clerk_sync is not in shared_preload_libraries" "$out"
check "the refusal does not contain the secret" "" "$(grep -o MfKQ9r8G <<<"$out")"
# This is why: a session that never loaded the library sees a plain placeholder.
check "(the PostgreSQL behaviour designed around: a placeholder is readable)" "$secret" "$(sql app 'SHOW clerk_sync.webhook_secret')"

echo "# 2. preloaded, no secret anywhere: 55000"
start
check_contains "apply without any secret fails with 55000" "ERROR 55000: no clerk_sync.webhook_secret is configured" "$(sql app "$(signed_call)")"

echo "# 3. preloaded, secret only in the server's environment"
export CLERK_WEBHOOK_SECRET=$secret
start
unset CLERK_WEBHOOK_SECRET
check "a delivery verifies against CLERK_WEBHOOK_SECRET" "ignored" "$(sql app "$(signed_call)")"
check "the setting itself stays empty" "" "$(sql postgres 'SHOW clerk_sync.webhook_secret')"

echo "# 4. not preloaded, secret only in the environment: usable (no role can read the environment)"
export CLERK_WEBHOOK_SECRET=$secret
start "shared_preload_libraries = ''"
unset CLERK_WEBHOOK_SECRET
check "a delivery verifies against CLERK_WEBHOOK_SECRET without preloading" "ignored" "$(sql app "$(signed_call)")"

echo "# 5. preloaded, secret in the config: a fresh non-superuser session can read it nowhere"
start "clerk_sync.webhook_secret = '$secret'"
check_contains "SHOW is refused" "ERROR 42501" "$(sql app 'SHOW clerk_sync.webhook_secret')"
check_contains "current_setting is refused" "ERROR 42501" "$(sql app "SELECT current_setting('clerk_sync.webhook_secret')")"
check "pg_settings has no row" "0" "$(sql app "SELECT count(*) FROM pg_settings WHERE name = 'clerk_sync.webhook_secret'")"
check_contains "pg_file_settings is refused" "ERROR 42501" "$(sql app 'SELECT * FROM pg_file_settings')"
check_contains "clerk.* tables are refused" "ERROR 42501" "$(sql app 'SELECT * FROM clerk.webhook_events')"
check "a delivery verifies" "ignored" "$(sql app "$(signed_call)")"
check "the server log never contains the secret" "0" "$(grep -c MfKQ9r8G "$dir/server.log")"

cleanup
echo "secrets: $passed passed, $failed failed"
[ "$failed" = 0 ]
