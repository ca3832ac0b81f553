#!/usr/bin/env bash
# Every test of clerk_sync: installs what is missing, builds and installs the extension, then runs
#   1. the pg_regress suite (make installcheck, temp instance with the library preloaded),
#   2. test/secrets.sh (secret handling across server configurations),
#   3. test/node (deliveries signed by the official svix package, sent with the pg package),
#   4. the fake Clerk API's own self-test (test/fake_clerk/selftest.mjs),
#   5. test/worker.sh (the background worker on a real cluster with the fake Clerk),
#   6. test/e2e (the Node forwarder and the Deno edge function over real HTTP, svix-signed),
#   7. test/ratelimit_concurrency.sh (pgbench clients racing for the quotas),
#   8. test/dump_restore.sh (pg_dump and pg_restore of a database using the extension),
#   9. test/tls.sh (the Clerk API over https: trusted, untrusted and misnamed certificates).
# As root, the servers run as the "postgres" OS user. Exit status: 0 only when everything passed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash test/install-deps.sh || exit 1
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
make -s -j2 >/dev/null && $sudo make -s install >/dev/null || { echo "build failed"; exit 1; }

passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

suite() {  # suite NAME COMMAND...: runs one suite, shows its output, adds up its counts
    local name=$1 status
    shift
    echo "=== $name"
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    local p f
    case $name in
        regress)
            p=$(sed -nE 's/.*All ([0-9]+) tests passed.*/\1/p' "$log")
            f=$(sed -nE 's/.* ([0-9]+) of ([0-9]+) tests failed.*/\1/p' "$log")
            [ -n "$f" ] && p=$(( $(sed -nE 's/.* [0-9]+ of ([0-9]+) tests failed.*/\1/p' "$log") - f )) ;;
        secrets|worker|ratelimit_concurrency|dump_restore|tls)
            p=$(sed -nE "s/^$name: ([0-9]+) passed, ([0-9]+) failed\$/\1/p" "$log")
            f=$(sed -nE "s/^$name: ([0-9]+) passed, ([0-9]+) failed\$/\2/p" "$log") ;;
        node|fake_clerk|e2e)
            p=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$log")
            f=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$log") ;;
    esac
    p=${p:-0} f=${f:-0}
    # a suite that failed without reporting a failed test still counts as one failure
    [ "$status" -ne 0 ] && [ "$f" = 0 ] && f=1
    passed=$((passed + p)) failed=$((failed + f))
}

suite regress bash test/regress.sh
suite secrets bash test/secrets.sh
suite node bash test/node/run.sh
suite fake_clerk node --test test/fake_clerk/selftest.mjs
suite worker bash test/worker.sh
suite e2e bash test/e2e/run.sh
suite ratelimit_concurrency bash test/ratelimit_concurrency.sh
suite dump_restore bash test/dump_restore.sh
suite tls bash test/tls.sh

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
