#!/usr/bin/env bash
# The Clerk API over https, against the fake Clerk serving TLS with a certificate from a test CA:
# a sync succeeds when clerk_sync.ca_file names that CA, and fails at once, without retrying and
# with a clear error, when the certificate is not trusted or names another host.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

port=${CLERK_TLS_TEST_PORT:-5551}
fake_port=$((port + 50))
passed=0 failed=0
use_throwaway_dir

sql() {  # sql ROLE STATEMENT...: prints the result, or "ERROR <sqlstate>: message"
    local role=$1
    shift
    run_pg psql -X -q -A -t -h "$dir" -p "$port" -U "$role" -d postgres -v ON_ERROR_STOP=1 \
        -c "\\set VERBOSITY verbose" -c "SET client_min_messages = error" "${@/#/-c}" 2>&1 |
        sed -E 's/^ERROR:  ([0-9A-Z]{5}): /ERROR \1: /' | grep -v '^LOCATION:' | head -3
}

# A test CA, and a certificate it signs for "localhost" only; another CA that signed nothing.
tls="$dir/tls"
mkdir -p "$tls"
for ca in ca other_ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=clerk_sync test $ca" \
        -keyout "$tls/$ca.key" -out "$tls/$ca.crt" 2>/dev/null || { echo "openssl failed"; exit 1; }
done
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null &&
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
        -extfile <(printf 'subjectAltName = DNS:localhost\n') -out "$tls/server.crt" 2>/dev/null ||
    { echo "openssl failed"; exit 1; }
[ "$(id -u)" = 0 ] && chown -R postgres: "$tls"

fake_clerk_start "$fake_port" --users 50 --tls-cert "$tls/server.crt" --tls-key "$tls/server.key" || exit 1
cluster_start "$dir" "$port" "clerk_sync.secret_key = 'sk_test_tls'" "clerk_sync.max_retries = 3" || exit 1
sql postgres "CREATE EXTENSION clerk_sync" "CREATE ROLE app LOGIN" >/dev/null
with_email=$(curl -s --cacert "$tls/ca.crt" -H 'authorization: Bearer sk_test_x' \
    "https://localhost:$fake_port/v1/users?limit=500" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).filter(u=>u.primary_email_address_id).length))')
# TCP connections the fake accepted (a failed handshake is still one; so is each reading)
connections() { fake_clerk_stat "https://localhost:$fake_port" connections --cacert "$tls/ca.crt"; }
sync_with() {  # sync_with API_URL CA_FILE: clerk_sync_all() with these settings
    sql postgres "SET clerk_sync.api_url = '$1'" "SET clerk_sync.ca_file = '$2'" "SELECT synced FROM clerk_sync_all()"
}

check "a sync over https, trusting the test CA through clerk_sync.ca_file" "$with_email" \
    "$(sync_with "https://localhost:$fake_port/v1" "$tls/ca.crt")"

before=$(connections)
out=$(sync_with "https://localhost:$fake_port/v1" "")
check "with the system's certificates instead: 08006, the certificate could not be verified" \
    "ERROR 08006: the Clerk API's TLS certificate could not be verified (clerk_sync_all, fetching page 1)" "$(head -1 <<<"$out")"
check "the error says what to set" t "$(grep -q 'HINT:.*clerk_sync.ca_file' <<<"$out" && echo t)"
out=$(sync_with "https://localhost:$fake_port/v1" "$tls/other_ca.crt")
check "with another CA: the same error" \
    "ERROR 08006: the Clerk API's TLS certificate could not be verified (clerk_sync_all, fetching page 1)" "$(head -1 <<<"$out")"
out=$(sync_with "https://127.0.0.1:$fake_port/v1" "$tls/ca.crt")
check "the right CA, but a host the certificate does not name: the same error" \
    "ERROR 08006: the Clerk API's TLS certificate could not be verified (clerk_sync_all, fetching page 1)" "$(head -1 <<<"$out")"
out=$(sync_with "https://localhost:$fake_port/v1" "$tls/no_such_file.crt")
check "a ca_file that cannot be read: the same error" \
    "ERROR 08006: the Clerk API's TLS certificate could not be verified (clerk_sync_all, fetching page 1)" "$(head -1 <<<"$out")"
check "none of these was retried (max_retries is 3): one connection each" 5 $(( $(connections) - before ))
check "only a superuser may choose the trusted certificates" \
    "ERROR 42501: permission denied to set parameter \"clerk_sync.ca_file\"" \
    "$(sql app "SET clerk_sync.ca_file = '/tmp/evil.crt'")"

echo "tls: $passed passed, $failed failed"
[ "$failed" = 0 ]
