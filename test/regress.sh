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
[ "$(id -u)" = 0 ] && chown -R postgres: "$out"
status=0
run_pg env CLERK_REGRESS_DATASET="$out/dataset.json" make -C "$out" -s installcheck REGRESS_OUT="$out" || status=$?
if [ $status -ne 0 ] && [ -f "$out/regression.diffs" ]; then
    cat "$out/regression.diffs"
fi
mkdir -p results && cp "$out"/results/*.out results/ 2>/dev/null || true
exit $status
