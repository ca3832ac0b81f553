# shellcheck shell=bash
# The database's floor for a backfill, shared by bench/sync_all.sh and bench/worker_backfill.sh so
# that both compare against the same statement: the fake's pages, already fetched and loaded into
# a table, written by one set-based INSERT ... SELECT ... ON CONFLICT per table, with the same
# mapping (primary email, tier, timestamps) and no HTTP, C++ or per-page work. The pages are kept
# as jsonb, so the floor does not even parse the users' JSON text as the extension must.
# Sourced after test/lib.sh (psql_q on the benchmark's cluster); needs node.

# floor_load_pages API_URL: creates bench.pages (one row per page of 500 users) and loads every
# user of the fake into it, a page at a time, so that memory stays flat at a million users.
floor_load_pages() {
    psql_q -c "CREATE SCHEMA bench; CREATE TABLE bench.pages (n serial, body jsonb)"
    node --input-type=module -e '
        import { once } from "node:events";
        const base = process.argv[1];
        for (let offset = 0; ; offset += 500) {
            const r = await fetch(`${base}/users?order_by=%2Bcreated_at&limit=500&offset=${offset}`,
                                  { headers: { authorization: "Bearer sk_test_floor" } });
            if (!r.ok) throw new Error(`HTTP ${r.status}`);
            const page = await r.text();   // compact JSON: no raw tab or newline to escape for COPY
            if (page !== "[]" && !process.stdout.write(page.replace(/\\/g, "\\\\") + "\n"))
                await once(process.stdout, "drain");
            if (JSON.parse(page).length < 500) break;
        }' "$1" | psql_q -c "COPY bench.pages (body) FROM STDIN"
}

# shellcheck disable=SC2034  # used by the scripts that source this file
floor_sql="
INSERT INTO clerk.users AS u (id, email, first_name, last_name, username, image_url, tier,
                              public_metadata, raw, clerk_created_at, clerk_updated_at)
SELECT x->>'id', e.email, x->>'first_name', x->>'last_name', x->>'username', x->>'image_url',
       coalesce((SELECT name FROM clerk.tiers WHERE name = x->'public_metadata'->>'tier'), 'FREE'),
       coalesce(x->'public_metadata', '{}'), x,
       timestamptz 'epoch' + (x->>'created_at')::bigint * interval '1 ms',
       timestamptz 'epoch' + (x->>'updated_at')::bigint * interval '1 ms'
  FROM bench.pages p, jsonb_array_elements(p.body) x,
       LATERAL (SELECT a->>'email_address' AS email FROM jsonb_array_elements(x->'email_addresses') a
                 WHERE a->>'id' = x->>'primary_email_address_id') e
ON CONFLICT (id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name,
    last_name = excluded.last_name, username = excluded.username, image_url = excluded.image_url,
    tier = excluded.tier, public_metadata = excluded.public_metadata, raw = excluded.raw,
    clerk_created_at = excluded.clerk_created_at, clerk_updated_at = excluded.clerk_updated_at,
    synced_at = now(), updated_at = now();
INSERT INTO clerk.rate_limits (user_id, tier, daily_limit)
SELECT u.id, u.tier, t.daily_limit FROM clerk.users u JOIN clerk.tiers t ON t.name = u.tier
ON CONFLICT DO NOTHING;"

# floor_seconds: wall time of the floor statements, in seconds.
floor_seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    psql_q -c "$floor_sql" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
