#!/usr/bin/env bash
# End to end over real HTTP: deliveries signed by the official `svix` package, POSTed with Node's
# fetch to the example forwarders — examples/node-forwarder (node:http + pg) and
# examples/supabase-edge-function (run with the Deno CLI, Postgres.js) — logged in as a role that
# may only execute clerk_apply_event, into a throwaway cluster that the test stops and restarts.
# Usage: bash test/e2e/run.sh   (port from CLERK_E2E_PORT, default 5561)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"

PORT=${CLERK_E2E_PORT:-5561}
# Fixed, made-up test secrets; not real Clerk secrets, not real passwords.
SECRET='whsec_Z2Vuc3JlZnpRZWQycDRlVmFnbjJlOGtu'
PASSWORD='e2e-forwarder-password'

# npm ci only when node_modules is missing or older than the lock file.
npm_ci() {
    if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
        (cd "$1" && npm ci --no-audit --no-fund >/dev/null)
    fi
}
npm_ci "$HERE"
npm_ci "$ROOT/test/node"   # the shared payload builders (test/node/clerk.mjs) import svix from there
npm_ci "$ROOT/examples/node-forwarder"

# Deno comes from the npm registry (the `deno` package ships the binary in a platform package).
DENO=$(cd "$HERE" && node -e 'console.log(require("./node_modules/deno/install_api.cjs").runInstall())' 2>/dev/null) &&
    "$DENO" --version >/dev/null 2>&1 || DENO=
[ -n "$DENO" ] || echo "deno is not available: the edge function's HTTP tests will be skipped" >&2

DIR=$(new_pg_dir)
cleanup() {
    # forwarders the test started and could not stop (it records their pids)
    if [ -f "$DIR/forwarders.pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$DIR/forwarders.pids"
    fi
    cluster_stop "$DIR"
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM   # so that the EXIT trap runs on Ctrl-C / kill too

cluster_start "$DIR" "$PORT" "clerk_sync.webhook_secret = '$SECRET'"
psql_su() { run_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"; }
# The forwarders' role, exactly as examples/README.md sets it up; a second one that pg_hba.conf
# turns away at login (SQLSTATE 28000, which must answer 500, not 401).
psql_su -v pw="$PASSWORD" <<'SQL'
CREATE EXTENSION clerk_sync;
CREATE ROLE clerk_webhook LOGIN PASSWORD :'pw';
GRANT EXECUTE ON FUNCTION clerk_apply_event(text, jsonb) TO clerk_webhook;
ALTER ROLE clerk_webhook SET statement_timeout = '10s';
ALTER ROLE clerk_webhook SET lock_timeout = '5s';
CREATE ROLE clerk_rejected LOGIN PASSWORD :'pw';
GRANT EXECUTE ON FUNCTION clerk_apply_event(text, jsonb) TO clerk_rejected;
SQL
# Over TCP, clerk_webhook must give its password (SCRAM); clerk_rejected is refused.
{
    printf 'host all clerk_webhook 127.0.0.1/32 scram-sha-256\nhost all clerk_webhook ::1/128 scram-sha-256\n'
    printf 'host all clerk_rejected 127.0.0.1/32 reject\nhost all clerk_rejected ::1/128 reject\n'
    cat "$DIR/data/pg_hba.conf"
} >"$DIR/pg_hba.new"
run_pg cp "$DIR/pg_hba.new" "$DIR/data/pg_hba.conf"
psql_su -c 'SELECT pg_reload_conf()' >/dev/null

# What the test calls to stop and start the database under the forwarders.
cat >"$DIR/pgctl.sh" <<EOF
. '$HERE/../lib.sh'
case \$1 in
    stop)  run_pg pg_ctl -D '$DIR/data' -m fast -w stop >/dev/null ;;
    start) run_pg pg_ctl -D '$DIR/data' -l '$DIR/server.log' -w -t 60 start >/dev/null ;;
    *)     echo "usage: pgctl.sh stop|start" >&2; exit 2 ;;
esac
EOF

status=0
PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres \
    CLERK_E2E_SECRET=$SECRET \
    CLERK_E2E_DATABASE_URL="postgres://clerk_webhook:$PASSWORD@localhost:$PORT/postgres" \
    CLERK_E2E_REJECTED_URL="postgres://clerk_rejected:$PASSWORD@localhost:$PORT/postgres" \
    CLERK_E2E_PGCTL="bash $DIR/pgctl.sh" \
    CLERK_E2E_PIDFILE="$DIR/forwarders.pids" \
    CLERK_E2E_DENO="$DENO" \
    node --test --test-concurrency=1 "$HERE"/*.test.mjs || status=$?
exit "$status"
