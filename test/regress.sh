#!/usr/bin/env bash
# Runs the pg_regress suite (make installcheck) against the installed extension, in a temp instance.
# As root, it runs as the "postgres" OS user from a copy of the test inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

out=$(new_pg_dir)
trap 'rm -rf "$out"' EXIT
cp -r Makefile clerk_sync.control sql expected test "$out/"
[ "$(id -u)" = 0 ] && chown -R postgres: "$out"
status=0
run_pg make -C "$out" -s installcheck REGRESS_OUT="$out" || status=$?
if [ $status -ne 0 ] && [ -f "$out/regression.diffs" ]; then
    cat "$out/regression.diffs"
fi
mkdir -p results && cp "$out"/results/*.out results/ 2>/dev/null || true
exit $status
