#!/usr/bin/env bash
# Runs the pg_regress suite (make installcheck) against the installed extension, in a temp instance,
# with the fake Clerk API (test/fake_clerk) on port 5580 as test/regress.conf expects.
# As root, pg_regress runs as the "postgres" OS user from a copy of the test inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

out=$(new_pg_dir)
trap 'fake_clerk_stop; rm -rf "$out"' EXIT
cp -r Makefile clerk_sync.control sql expected test "$out/"
fake_clerk_start 5580 --users 1000
# The fake's users, for sql/sync.sql to check the backfill against (read with pg_read_file).
fake_clerk_dump http://127.0.0.1:5580/v1 >"$out/dataset.json"
# A scenario with a user that cannot be stored (no created_at), for sql/sync.sql.
broken=$(fake_clerk_dump "http://127.0.0.1:5580/s/users=50,seed=7/v1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[10].id))')
curl -sf -X POST http://127.0.0.1:5580/__admin/users -H 'content-type: application/json' \
    -d "{\"scenario\":\"users=50,seed=7\",\"upsert\":[{\"id\":\"$broken\",\"created_at\":null}]}" >/dev/null
[ "$(id -u)" = 0 ] && chown -R postgres: "$out"
status=0
run_pg env CLERK_REGRESS_DATASET="$out/dataset.json" make -C "$out" -s installcheck REGRESS_OUT="$out" || status=$?
if [ $status -ne 0 ] && [ -f "$out/regression.diffs" ]; then
    cat "$out/regression.diffs"
fi
mkdir -p results && cp "$out"/results/*.out results/ 2>/dev/null || true
exit $status
