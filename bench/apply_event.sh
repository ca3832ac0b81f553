#!/usr/bin/env bash
# Benchmark: verified webhook apply (clerk_apply_event(payload, headers)) against the floor, a bare
# single-row upsert of the same mapped rows into the same tables.
#
#   bench/apply_event.sh              # 10,000 events, 5 runs of each measurement, port 5521
#
# Environment:
#   CLERK_BENCH_EVENTS  number of events (default 10000: user.created for half, then user.updated)
#   CLERK_BENCH_RUNS    repetitions of each measurement (default 5); medians are reported
#   CLERK_BENCH_PORT    port of the throwaway cluster (default 5521)
#
# Needs the extension installed (make install) and PostgreSQL's pgbench and pgcrypto (both come
# with the server packages). Runs as any user; as root the server runs as the "postgres" OS user.
# It is a benchmark, not a test: the target (floor/apply <= 2.0) is printed, never enforced. It
# exits non-zero only when something broke (setup, a pgbench error, or an apply with an unexpected
# outcome or result).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh source-path=SCRIPTDIR/..
. "$here/../test/lib.sh"

events=${CLERK_BENCH_EVENTS:-10000}
runs=${CLERK_BENCH_RUNS:-5}
port=${CLERK_BENCH_PORT:-5521}
for v in events runs port; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "apply_event.sh: $v must be a positive integer" >&2; exit 2; }
done
# Both client counts must split the events evenly: round down to an even number.
if (( events % 2 )); then
    events=$(( events - 1 ))
    echo "note: using $events events (an even number, so that 2 clients run the same count)"
fi
(( events >= 2 )) || { echo "apply_event.sh: CLERK_BENCH_EVENTS must be at least 2" >&2; exit 2; }
users=$(( (events + 1) / 2 ))     # user.created for each user, then user.updated for the rest
updates=$(( events - users ))

# A made-up test secret: "whsec_" + base64 of 24 bytes. Never a real endpoint's.
secret_b64='Y2xlcmtfc3luYyBiZW5jaCBzZWNyZXQh'
secret="whsec_$secret_b64"

use_throwaway_dir

# The events are signed once, before the runs, with the signing time as svix-timestamp; the runs
# then replay them for a few minutes, so the timestamp tolerance is widened to its maximum (a day).
cluster_start "$dir" "$port" \
    "clerk_sync.webhook_secret = '$secret'" \
    "clerk_sync.webhook_tolerance = 86400" \
    "autovacuum = off" \
    "max_wal_size = '4GB'" ||
    { echo "apply_event.sh: could not start the cluster" >&2; exit 1; }


echo "clerk_sync apply benchmark: $events events ($users user.created, $updates user.updated), $runs runs, $(nproc) CPUs, PostgreSQL $(pg_config --version | awk '{print $2}')"
t0=$SECONDS

# ---------------------------------------------------------------------------------------------
# Events: realistic Clerk user objects (~3 KB as jsonb text), signed with pgcrypto as Svix does.
# ---------------------------------------------------------------------------------------------
psql_q -v events="$events" -v users="$users" -v secret_b64="$secret_b64" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION clerk_sync;
CREATE EXTENSION pgcrypto;
CREATE SCHEMA bench;

-- A Clerk-style id: prefix, underscore, 27 base62-looking characters derived from a seed.
CREATE FUNCTION bench.kid(prefix text, seed text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT prefix || '_' || substr(translate(encode(digest(seed, 'sha256'), 'base64'), '+/=', ''), 1, 27)
$$;

-- Clerk's image_url: img.clerk.com followed by a base64 of a JSON proxy descriptor.
CREATE FUNCTION bench.clerk_image(seed text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'https://img.clerk.com/' || translate(encode(convert_to(
        '{"type":"proxy","src":"https://images.clerk.dev/oauth_google/img_' || bench.kid('x', seed) || '"}',
        'UTF8'), 'base64'), E'\n', '')
$$;

-- The user object of user i, version v (1 = as created, 2 = as later updated).
CREATE FUNCTION bench.user_object(i int, v int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    WITH k AS (
        SELECT bench.kid('user', 'u' || i) AS id,
               bench.kid('idn', 'e1' || i) AS email1_id,
               bench.kid('idn', 'e2' || i) AS email2_id,
               bench.kid('idn', 'g' || i) AS google_id,
               (ARRAY['Alice','Bruno','Chloé','Dmitri','Emma','Farah','Gustavo','Hana','Ivan','Jasmine',
                      'Kenji','Lena','Mateo','Nadia','Oliver','Priya','Quentin','Rosa','Sven','Yuki'])[1 + i % 20] AS first_name,
               (ARRAY['Anderson','Bianchi','Chen','Dubois','Eriksson','Fernández','García','Hoffmann',
                      'Ito','Jensen','Kowalski','López','Müller','Novak','O''Brien','Patel','Rossi',
                      'Schmidt','Tanaka','Williams','Zhang','Nguyen','Kim'])[1 + (i / 20) % 23] AS last_name,
               1704067200000::bigint + i::bigint * 61237 AS created_ms,
               (ARRAY['FREE','FREE','FREE','PRO','PRO','MAXX','ENTERPRISE'])[1 + i % 7] AS tier1
    ), t AS (
        SELECT k.*,
               created_ms + CASE WHEN v = 1 THEN 417 ELSE 86400000::bigint * (1 + i % 30) + 3571 END AS updated_ms,
               CASE WHEN v = 2 AND tier1 = 'FREE' AND i % 2 = 0 THEN 'PRO' ELSE tier1 END AS tier,
               lower(first_name) || '.' || lower(replace(last_name, '''', '')) || i || '@' ||
                   (ARRAY['gmail.com','outlook.com','example.com','proton.me','company.io'])[1 + i % 5] AS email1,
               'work+' || i || '@acme-' || (i % 97) || '.example.org' AS email2
          FROM k
    ), addr AS (
        SELECT t.*,
               jsonb_build_object(
                   'id', email1_id, 'object', 'email_address', 'email_address', email1,
                   'reserved', false, 'matches_sso_connection', false,
                   'verification', jsonb_build_object('status', 'verified', 'strategy', 'from_oauth_google',
                                                      'attempts', null, 'expire_at', null),
                   'linked_to', jsonb_build_array(jsonb_build_object('type', 'oauth_google', 'id', google_id)),
                   'created_at', created_ms, 'updated_at', created_ms + 211) AS address1,
               jsonb_build_object(
                   'id', email2_id, 'object', 'email_address', 'email_address', email2,
                   'reserved', false, 'matches_sso_connection', false,
                   'verification', jsonb_build_object('status', 'verified', 'strategy', 'email_code',
                                                      'attempts', 1, 'expire_at', created_ms + 600000),
                   'linked_to', '[]'::jsonb,
                   'created_at', created_ms + 5000, 'updated_at', created_ms + 5100) AS address2
          FROM t
    )
    SELECT jsonb_build_object(
        'id', id, 'object', 'user', 'external_id', null,
        'username', CASE WHEN i % 4 = 0 THEN NULL ELSE lower(first_name) || '_' || i END,
        'first_name', first_name,
        'last_name', CASE WHEN v = 2 AND i % 5 = 0 THEN last_name || '-Smith' ELSE last_name END,
        'image_url', bench.clerk_image('img' || i),
        'profile_image_url', 'https://images.clerk.dev/oauth_google/img_' || bench.kid('x', 'img' || i),
        'has_image', true,
        -- the primary address is not always the first one
        'primary_email_address_id', CASE WHEN i % 3 = 0 THEN email2_id ELSE email1_id END,
        'primary_phone_number_id', null, 'primary_web3_wallet_id', null,
        'password_enabled', i % 2 = 0, 'two_factor_enabled', false, 'totp_enabled', false,
        'backup_code_enabled', false,
        'email_addresses', CASE WHEN i % 3 = 0 THEN jsonb_build_array(address1, address2)
                                ELSE jsonb_build_array(address1) END,
        'phone_numbers', '[]'::jsonb, 'web3_wallets', '[]'::jsonb, 'passkeys', '[]'::jsonb,
        'external_accounts', jsonb_build_array(jsonb_build_object(
            'object', 'google_account', 'id', google_id, 'provider', 'oauth_google',
            'identification_id', email1_id,
            'provider_user_id', (100000000000000000000::numeric + i * 7919)::text,
            'approved_scopes', 'email https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid profile',
            'email_address', email1, 'first_name', first_name, 'last_name', last_name,
            'avatar_url', 'https://lh3.googleusercontent.com/a/ACg8oc' || bench.kid('x', 'av' || i) || '=s96-c',
            'image_url', bench.clerk_image('img' || i),
            'username', null, 'phone_number', null, 'label', null, 'public_metadata', '{}'::jsonb,
            'created_at', created_ms, 'updated_at', created_ms + 211,
            'verification', jsonb_build_object('status', 'verified', 'strategy', 'oauth_google',
                                               'attempts', null, 'expire_at', created_ms + 600000))),
        'saml_accounts', '[]'::jsonb, 'enterprise_accounts', '[]'::jsonb,
        'public_metadata', jsonb_build_object('tier', tier, 'onboarded', v = 2 OR i % 2 = 1,
                                              'locale', (ARRAY['en-US','fr-FR','de-DE','ja-JP'])[1 + i % 4]),
        'private_metadata', jsonb_build_object('stripe_customer_id', bench.kid('cus', 's' || i)),
        'unsafe_metadata', '{}'::jsonb,
        'banned', false, 'locked', false, 'lockout_expires_in_seconds', null,
        'verification_attempts_remaining', 100, 'delete_self_enabled', true,
        'create_organization_enabled', true, 'create_organizations_limit', null,
        'legal_accepted_at', null, 'mfa_enabled_at', null, 'mfa_disabled_at', null,
        'last_sign_in_at', updated_ms - 1000, 'last_active_at', updated_ms,
        'created_at', created_ms, 'updated_at', updated_ms)
      FROM addr
$$;

-- Event n: user.created of user n for n <= users, then user.updated of user n - users.
-- The payload is built once as text; the signature is computed over that very text.
-- STORAGE PLAIN here and in bench.rows: the inputs are kept uncompressed, as a request's
-- parameters arrive. Otherwise the apply would pay for decompressing its payload, and the floor
-- would copy bench.rows.raw already compressed into clerk.users, skipping the compression that
-- any real write of a ~2.5 KB jsonb pays.
CREATE TABLE bench.events (n int PRIMARY KEY, payload text NOT NULL, headers jsonb NOT NULL);
ALTER TABLE bench.events ALTER payload SET STORAGE PLAIN;
WITH src AS (
    SELECT n, CASE WHEN n <= :users THEN n ELSE n - :users END AS i,
              CASE WHEN n <= :users THEN 1 ELSE 2 END AS v
      FROM generate_series(1, :events) AS n
), p AS MATERIALIZED (
    SELECT n, bench.kid('msg', 'm' || n) AS svix_id,
           extract(epoch FROM now())::bigint::text AS ts,
           jsonb_build_object(
               'data', u,
               'event_attributes', jsonb_build_object('http_request', jsonb_build_object(
                   'client_ip', '203.0.113.' || (n % 250 + 1),
                   'user_agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36')),
               'instance_id', bench.kid('ins', 'instance'),
               'object', 'event',
               'timestamp', (u->>'updated_at')::bigint + 120,
               'type', CASE WHEN v = 1 THEN 'user.created' ELSE 'user.updated' END)::text AS payload
      FROM src, LATERAL bench.user_object(i, v) AS u
)
INSERT INTO bench.events (n, payload, headers)
SELECT n, payload,
       jsonb_build_object(
           'svix-id', svix_id,
           'svix-timestamp', ts,
           'svix-signature', 'v1,' || encode(hmac(convert_to(svix_id || '.' || ts || '.' || payload, 'UTF8'),
                                                   decode(:'secret_b64', 'base64'), 'sha256'), 'base64'),
           'content-type', 'application/json',
           'user-agent', 'Svix-Webhooks/1.21.0')
  FROM p;

-- The rows those events map to, as the floor writes them (mapped here in SQL from the same text).
CREATE TABLE bench.rows (
    n int PRIMARY KEY, id text NOT NULL, email text, first_name text, last_name text,
    username text, image_url text, tier text, public_metadata jsonb, raw jsonb NOT NULL,
    created_at timestamptz, updated_at timestamptz);
ALTER TABLE bench.rows ALTER public_metadata SET STORAGE PLAIN, ALTER raw SET STORAGE PLAIN;
INSERT INTO bench.rows
SELECT n, u->>'id' AS id,
       (SELECT a->>'email_address' FROM jsonb_array_elements(u->'email_addresses') a
         WHERE a->>'id' = u->>'primary_email_address_id') AS email,
       u->>'first_name' AS first_name, u->>'last_name' AS last_name, u->>'username' AS username,
       u->>'image_url' AS image_url, u->'public_metadata'->>'tier' AS tier,
       u->'public_metadata' AS public_metadata, u AS raw,
       'epoch'::timestamptz + (u->>'created_at')::bigint * interval '1 millisecond' AS created_at,
       'epoch'::timestamptz + (u->>'updated_at')::bigint * interval '1 millisecond' AS updated_at
  FROM (SELECT n, payload::jsonb->'data' AS u FROM bench.events) e;

CREATE SEQUENCE bench.seq;
ANALYZE bench.events, bench.rows;
SQL

# Sanity: every event verifies, and payloads have the intended size.
bad=$(psql_q -c "SELECT count(*) FROM bench.events WHERE NOT clerk_webhook_verify(payload, headers, '$secret')")
[ "$bad" = 0 ] || { echo "apply_event.sh: $bad pre-signed events do not verify" >&2; exit 1; }
sizes=$(psql_q -c "SELECT min(octet_length(payload)) || '-' || max(octet_length(payload)) || ' B (avg ' ||
                          round(avg(octet_length(payload))) || '), user object ' ||
                          (SELECT min(octet_length(raw::text)) || '-' || max(octet_length(raw::text)) || ' B'
                             FROM bench.rows) FROM bench.events")
echo "events generated and signed in $(( SECONDS - t0 )) s; payload size $sizes"

# ---------------------------------------------------------------------------------------------
# The two transaction scripts. n = (SELECT nextval(...)) is an InitPlan, so the lookup is an index
# scan on the primary key (a bare nextval() in WHERE would be evaluated per row, in a seq scan).
# The apply is one statement, as a webhook endpoint sends it. The floor is what an application
# writing the same rows itself would send: one transaction of two statements (four round trips
# with BEGIN and END); it has no inbox row, no signature check and no JSON mapping to do.
# ---------------------------------------------------------------------------------------------
cat >"$dir/apply.sql" <<'SQL'
SELECT clerk_apply_event(payload, headers) FROM bench.events WHERE n = (SELECT nextval('bench.seq'));
SQL
cat >"$dir/floor.sql" <<'SQL'
BEGIN;
INSERT INTO clerk.users AS u (id, email, first_name, last_name, username, image_url, tier,
                              public_metadata, raw, clerk_created_at, clerk_updated_at)
SELECT id, email, first_name, last_name, username, image_url, tier, public_metadata, raw,
       created_at, updated_at
  FROM bench.rows WHERE n = (SELECT nextval('bench.seq'))
ON CONFLICT (id) DO UPDATE
   SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
       username = excluded.username, image_url = excluded.image_url, tier = excluded.tier,
       public_metadata = excluded.public_metadata, raw = excluded.raw,
       clerk_created_at = excluded.clerk_created_at, clerk_updated_at = excluded.clerk_updated_at,
       synced_at = now(), updated_at = now();
INSERT INTO clerk.rate_limits (user_id, tier, daily_limit)
SELECT r.id, r.tier, t.daily_limit FROM bench.rows r JOIN clerk.tiers t ON t.name = r.tier
 WHERE r.n = (SELECT currval('bench.seq'))
ON CONFLICT (user_id) DO NOTHING;
END;
SQL
chmod 644 "$dir/apply.sql" "$dir/floor.sql"

for check in "SELECT payload FROM bench.events WHERE n = (SELECT nextval('bench.seq'))" \
             "SELECT id FROM bench.rows WHERE n = (SELECT currval('bench.seq'))"; do
    plan=$(psql_q -c "EXPLAIN $check")
    grep -q 'Index Scan' <<<"$plan" || { echo "apply_event.sh: not an index lookup:"; echo "$plan"; exit 1; } >&2
done

reset_tables() {
    psql_q >/dev/null <<'SQL'
TRUNCATE clerk.users, clerk.rate_limits, clerk.webhook_events, clerk.deleted_users CASCADE;
SELECT setval('bench.seq', 1, false);
CHECKPOINT;
SQL
}

# After a phase: the last event taken, the row counts, and (in the first run) a hash of what
# clerk.users holds, which must be the same after every phase: the apply and the floor write the
# same rows.
phase_state() {   # phase_state WITH_DIGEST
    psql_q -c "SELECT (SELECT last_value FROM bench.seq) || ' ' ||
                      (SELECT count(*) FROM clerk.users) || ' ' ||
                      (SELECT count(*) FROM clerk.rate_limits) || ' ' ||
                      (SELECT count(*) FROM clerk.webhook_events) || ' ' ||
                      (SELECT count(*) FROM clerk.webhook_events WHERE outcome = 'applied') || ' ' ||
                      CASE WHEN $1 THEN
                          (SELECT md5(string_agg(concat_ws('|', id, email, first_name, last_name, username,
                                                           image_url, tier, public_metadata::text, raw::text,
                                                           clerk_created_at, clerk_updated_at), E'\n' ORDER BY id))
                             FROM clerk.users)
                      ELSE '-' END"
}

expected_digest=""
phase_tps=""
# run_phase KIND CLIENTS RUN: runs one measurement, checks its writes, sets phase_tps (events/s).
run_phase() {
    local kind=$1 clients=$2 run=$3 out processed state digest
    reset_tables
    out=$(pgbench_run -f "$dir/$kind.sql" -c "$clients" -j "$clients" -t $(( events / clients )) 2>&1) || {
        echo "apply_event.sh: pgbench ($kind, $clients clients) failed:" >&2
        echo "$out" >&2
        exit 1
    }
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    phase_tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
    if [ "$processed" != "$events" ] || [ -z "$phase_tps" ]; then
        echo "apply_event.sh: pgbench ($kind, $clients clients) did not process $events transactions:" >&2
        echo "$out" >&2
        exit 1
    fi
    phase_tps=$(printf '%.1f' "$phase_tps")
    state=$(phase_state "$( (( run == 1 )) && echo true || echo false)")
    digest=${state##* }
    state=${state% *}
    # Each transaction took the next event, each event once: so every apply returned 'applied' iff
    # the inbox holds all the events, each 'applied'.
    local want="$events $users $users 0 0"
    [ "$kind" = apply ] && want="$events $users $users $events $events"
    if [ "$state" != "$want" ]; then
        echo "apply_event.sh: after $kind with $clients clients, last event/users/rate_limits/inbox/applied = $state, expected $want" >&2
        psql_q -c "SELECT outcome, detail, count(*) FROM clerk.webhook_events GROUP BY 1, 2" >&2
        exit 1
    fi
    if [ "$digest" != - ]; then
        if [ -z "$expected_digest" ]; then
            expected_digest=$digest
        elif [ "$digest" != "$expected_digest" ]; then
            echo "apply_event.sh: $kind with $clients clients left clerk.users different from the other phases" >&2
            exit 1
        fi
    fi
}

declare -A results   # results[kind,clients] = space-separated events/s of each run
for (( r = 1; r <= runs; r++ )); do
    # alternate which goes first, so that drift over the runs does not favour either
    if (( r % 2 )); then order="apply floor"; else order="floor apply"; fi
    line="run $r/$runs:"
    for c in 1 2; do
        for kind in $order; do
            run_phase "$kind" "$c" "$r"
            results[$kind,$c]+="$phase_tps "
            line+=$(printf '  %s c%d %8.1f' "$kind" "$c" "$phase_tps")
        done
    done
    echo "$line ev/s"
done


echo
echo "Medians over $runs runs, $events events each ($users user.created + $updates user.updated), events/s:"
printf '  %-8s %14s %14s %12s   %s\n' clients "verified apply" "floor upsert" floor/apply "target"
for c in 1 2; do
    a=$(median <<<"${results[apply,$c]}")
    f=$(median <<<"${results[floor,$c]}")
    ratio=$(awk -v a="$a" -v f="$f" 'BEGIN {printf "%.2f", f / a}')
    verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 2.0) ? "<= 2.0 met" : "<= 2.0 NOT met"}')
    printf '  %-8s %14s %14s %11sx   %s\n' "$c" "$a" "$f" "$ratio" "$verdict"
done
echo "(every apply returned 'applied'; in run 1 apply and floor left identical clerk.users rows; total $(( SECONDS - t0 )) s)"
