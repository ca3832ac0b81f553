#!/usr/bin/env bash
# End-to-end webhook test with clients nobody here wrote: deliveries are signed by the official
# `svix` npm package and sent with the `pg` npm package, as an edge function would send them.
# Usage: bash test/node/run.sh   (port from CLERK_NODE_TEST_PORT, default 5511)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
cd "$HERE"

PORT=${CLERK_NODE_TEST_PORT:-5511}
# Fixed, made-up test secrets (whsec_ + base64 of 24 random bytes); not real Clerk secrets.
SECRET_1='whsec_LlIJ+Zab4v364Y8vrZAL5sMBW5XHRkM2'
SECRET_2='whsec_Pk2CIufv1idmIIYdxk6REOziOhTQQaVw'   # the rotation secret

# npm ci only when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi

DIR=$(new_pg_dir)
cleanup() {
    cluster_stop "$DIR"
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM   # so that the EXIT trap runs on Ctrl-C / kill too

# Both secrets are configured, space-separated, as during a secret rotation.
cluster_start "$DIR" "$PORT" "clerk_sync.webhook_secret = '$SECRET_1 $SECRET_2'"
run_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres \
    -c 'CREATE EXTENSION clerk_sync'

status=0
PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres \
    CLERK_TEST_SECRET=$SECRET_1 CLERK_TEST_SECRET_2=$SECRET_2 \
    node --test "$HERE"/*.test.mjs || status=$?
exit "$status"
