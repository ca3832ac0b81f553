-- clerk_sync_all() and clerk_fetch_user() against the fake Clerk API (test/fake_clerk), through
-- the real libcurl path. Per-page NOTICEs carry timings, so only warnings are shown here.
SET client_min_messages = warning;

-- Points clerk_sync.api_url at one of the fake's scenarios (see test/fake_clerk/README.md).
CREATE FUNCTION test.scenario(keys text) RETURNS void LANGUAGE sql
AS $$ SELECT set_config('clerk_sync.api_url', 'http://127.0.0.1:5580' || CASE WHEN keys = '' THEN '' ELSE '/s/' || keys END || '/v1', false) $$;

-- What clerk.users must hold for a list of Clerk users, derived in SQL independently of the C++
-- mapping: the primary email (not the first), names, the tier if known (FREE otherwise).
CREATE FUNCTION test.expected(dataset jsonb)
RETURNS TABLE (id text, email text, first_name text, last_name text, username text, image_url text,
               tier text, updated_ms bigint)
LANGUAGE sql
AS $$
    SELECT u->>'id',
           (SELECT a->>'email_address' FROM jsonb_array_elements(u->'email_addresses') a
             WHERE a->>'id' = u->>'primary_email_address_id'),
           u->>'first_name', u->>'last_name', u->>'username', u->>'image_url',
           coalesce((SELECT t.name FROM clerk.tiers t WHERE t.name = u->'public_metadata'->>'tier'), 'FREE'),
           (u->>'updated_at')::bigint
      FROM jsonb_array_elements(dataset) u
$$;

-- Rows that differ between clerk.users and a dataset (users without email are expected absent).
CREATE FUNCTION test.differences(dataset jsonb) RETURNS bigint LANGUAGE sql
AS $$
    SELECT count(*)
      FROM (SELECT * FROM test.expected(dataset) WHERE email IS NOT NULL) e
      FULL JOIN clerk.users u USING (id)
     WHERE e.id IS NULL OR u.id IS NULL
        OR (e.email, e.first_name, e.last_name, e.username, e.image_url, e.tier, e.updated_ms)
           IS DISTINCT FROM (u.email, u.first_name, u.last_name, u.username, u.image_url, u.tier,
                             (extract(epoch FROM u.clerk_updated_at) * 1000)::bigint)
$$;

CREATE FUNCTION test.reset() RETURNS void LANGUAGE sql
AS $$ TRUNCATE clerk.users, clerk.rate_limits, clerk.deleted_users, clerk.sync_runs CASCADE $$;

-- A backfill from scratch with the given page size, and how it compares with a dataset.
CREATE FUNCTION test.backfill(page_size int, dataset jsonb, OUT total bigint, OUT pages bigint, OUT differences bigint)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM test.reset();
    PERFORM set_config('clerk_sync.page_size', page_size::text, true);
    SELECT s.total, s.pages INTO total, pages FROM clerk_sync_all() s;
    differences := test.differences(dataset);
END
$$;

\getenv dataset_file CLERK_REGRESS_DATASET
CREATE TABLE test.dataset AS SELECT pg_read_file(:'dataset_file')::jsonb AS users;
SELECT jsonb_array_length(users) AS clerk_users,
       count(*) FILTER (WHERE e.email IS NULL) AS without_email,
       count(*) FILTER (WHERE e.email <> u->'email_addresses'->0->>'email_address') AS primary_not_first
  FROM test.dataset, jsonb_array_elements(users) WITH ORDINALITY AS x(u, n)
  JOIN test.expected(test.dataset.users) e ON e.id = u->>'id'
 GROUP BY users;

-- Full backfill: the table equals the dataset exactly; every user has its rate-limit row.
SELECT test.reset();
SELECT synced, skipped, failed, deleted, total, pages FROM clerk_sync_all();
SELECT test.differences(users) AS differences FROM test.dataset;
SELECT count(*) AS users_without_rate_limit FROM clerk.users u
 WHERE NOT EXISTS (SELECT FROM clerk.rate_limits r WHERE r.user_id = u.id);
-- raw is the whole user object as Clerk sent it
SELECT count(*) AS raw_differs FROM clerk.users u, test.dataset d, jsonb_array_elements(d.users) x
 WHERE x->>'id' = u.id AND u.raw IS DISTINCT FROM x;
SELECT kind, status, synced, skipped, failed, deleted, pages, requests, rate_limited, error, detail
  FROM clerk.sync_runs;
-- Running it again converges to the same state (and keeps the rate-limit rows' usage).
UPDATE clerk.rate_limits SET message_count = 3;
SELECT synced, skipped, failed, deleted, total FROM clerk_sync_all();
SELECT test.differences(users) AS differences, (SELECT sum(message_count) FROM clerk.rate_limits) AS usage_kept
  FROM test.dataset;
-- (The dataset's unknown tier, from here on known, so that later runs warn no more.)
INSERT INTO clerk.tiers VALUES ('gold', 5);

-- Page sizes 1, 7 and 500, by cursor: the same users every time (120 users share created_at in groups).
CREATE TABLE test.small AS SELECT jsonb_path_query_array(users, '$[0 to 119]') AS users FROM test.dataset;
SELECT test.scenario('users=120');
SELECT size, b.* FROM unnest(ARRAY[1, 7, 500]) AS size, test.small, LATERAL test.backfill(size, users) AS b;
RESET clerk_sync.page_size;

-- A server that refuses the starting_after cursor (422): offset paging, same result.
SELECT test.reset(), test.scenario('users=120,nocursor=1'), set_config('clerk_sync.page_size', '7', false);
SELECT total, pages FROM clerk_sync_all();
SELECT test.differences(users) AS differences FROM test.small;
SELECT detail FROM clerk.sync_runs;
RESET clerk_sync.page_size;

-- Faults: 20% 5xx, 5% dropped connections, 5% truncated bodies. Retried; nothing lost.
SELECT test.reset(), test.scenario('fail5xx=20,drop=5,trunc=5'), set_config('clerk_sync.page_size', '100', false);
SET clerk_sync.max_retries = 10;
SELECT synced, skipped, failed, total FROM clerk_sync_all();
SELECT test.differences(users) AS differences FROM test.dataset;
SELECT requests > pages AS retried FROM clerk.sync_runs;
RESET clerk_sync.max_retries;
RESET clerk_sync.page_size;

-- A rate limit: 429 + Retry-After is waited out, and the sync completes.
SELECT test.reset(), test.scenario('users=120,ratelimit=3/1'), set_config('clerk_sync.page_size', '20', false);
SELECT total FROM clerk_sync_all();
SELECT test.differences(users) AS differences FROM test.small;
SELECT pages, rate_limited > 0 AS rate_limited, requests = pages + rate_limited AS only_429s_repeated FROM clerk.sync_runs;
RESET clerk_sync.page_size;

-- A user that cannot be stored (the fake serves one without created_at) counts as failed, with a
-- WARNING; the rest of its page is applied, and no deletion runs after such a pass.
SELECT test.reset(), test.scenario('users=50,seed=7');
SELECT synced, skipped, failed, deleted, total FROM clerk_sync_all();
SELECT count(*) AS stored FROM clerk.users;
SELECT failed, detail FROM clerk.sync_runs;
RESET clerk_sync.page_size;

-- Clerk's refusals fail at once with Clerk's own code and message; the run rolls back entirely.
SELECT test.reset(), test.scenario('status=401');
SELECT test.try('SELECT total FROM clerk_sync_all()') AS unauthorized;
SELECT test.scenario('status=403');
SELECT test.try('SELECT total FROM clerk_sync_all()') AS forbidden;
SELECT count(*) AS runs_recorded FROM clerk.sync_runs;
-- Clerk down: retries run out, the error says which page and why.
SELECT test.scenario('fail5xx=100'), set_config('clerk_sync.max_retries', '1', false);
SELECT regexp_replace(test.try('SELECT total FROM clerk_sync_all()'), 'after \d+ attempts', 'after N attempts') AS clerk_down;
RESET clerk_sync.max_retries;
-- Nothing listening.
SELECT set_config('clerk_sync.api_url', 'http://127.0.0.1:1/v1', false), set_config('clerk_sync.max_retries', '0', false);
SELECT test.try('SELECT total FROM clerk_sync_all()') LIKE 'ERROR 08006: the Clerk API request failed (clerk_sync_all, fetching page 1)%' AS connection_refused;
RESET clerk_sync.max_retries;
-- Plain http is refused to anything but this machine (the key would cross the network in clear).
SELECT set_config('clerk_sync.api_url', 'http://clerk.example.com/v1', false);
SELECT test.try('SELECT total FROM clerk_sync_all()') AS insecure_http;
SELECT set_config('clerk_sync.api_url', 'ftp://127.0.0.1/v1', false);
SELECT test.try('SELECT total FROM clerk_sync_all()') AS not_http;
SELECT count(*) AS users_after_failures FROM clerk.users;

-- Cancel mid-request (statement_timeout while Clerk takes 20 s to answer): stops promptly, and
-- nothing of the pages already applied remains.
SELECT test.scenario('users=120,slow=50,slowms=20000'), set_config('clerk_sync.page_size', '10', false);
SET statement_timeout = '1s';
SELECT clock_timestamp() AS started \gset
SELECT total FROM clerk_sync_all();
RESET statement_timeout;
SELECT clock_timestamp() - :'started'::timestamptz < interval '5 s' AS stopped_promptly,
       (SELECT count(*) FROM clerk.users) AS users_left, (SELECT count(*) FROM clerk.sync_runs) AS runs_left;
RESET clerk_sync.page_size;

-- Deletions: users gone from Clerk are deleted with tombstones; a newer local row is kept.
SELECT test.scenario('');
SELECT total, deleted FROM clerk_sync_all();
-- a webhook lands with a version newer than what Clerk's list will say
SELECT clerk_apply_event(test.event('user.updated',
           jsonb_set(u, '{updated_at}', to_jsonb(4102444800000::bigint)) || '{"first_name": "From a webhook"}')::jsonb)
  FROM test.dataset, jsonb_array_elements(users) WITH ORDINALITY AS x(u, n) WHERE n = 3;
-- every 10th user deleted in Clerk: 100 of 1000, of which 94 stored (the others have no email)
SELECT test.scenario('delete=10');
SELECT total, deleted FROM clerk_sync_all();
SELECT count(*) AS users, (SELECT count(*) FROM clerk.deleted_users) AS tombstones FROM clerk.users;
SELECT first_name FROM clerk.users u, test.dataset d WHERE u.id = d.users->2->>'id';
-- the deletions are recorded
SELECT deleted, detail FROM clerk.sync_runs ORDER BY id DESC LIMIT 1;
-- A tombstone newer than a fetched user wins: deleted users in Clerk's (stale) list stay deleted.
SELECT test.scenario('');
SELECT total, deleted FROM clerk_sync_all(delete_missing => false);
SELECT count(*) AS users, (SELECT count(*) FROM clerk.deleted_users) AS tombstones FROM clerk.users;

-- The circuit breaker: Clerk answering empty lists (an outage) must never wipe the table.
SELECT test.reset(), test.scenario('users=120');
SELECT total FROM clerk_sync_all();
SELECT test.scenario('users=120,empty=1');
SELECT total, deleted FROM clerk_sync_all();
SELECT count(*) AS users_kept FROM clerk.users;
SELECT deleted, detail FROM clerk.sync_runs ORDER BY id DESC LIMIT 1;
-- ... nor a shrink beyond clerk_sync.max_delete_fraction (here 25% of users gone, limit 10%).
SELECT test.scenario('users=120,delete=4');
SELECT total, deleted FROM clerk_sync_all();
SET clerk_sync.max_delete_fraction = 0.3;
SELECT total, deleted FROM clerk_sync_all();
RESET clerk_sync.max_delete_fraction;

-- One sync at a time per database: a second caller fails at once with 55P03.
CREATE EXTENSION dblink;
SELECT dblink_connect('other', 'dbname=' || current_database());
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', 'SELECT clerk._begin_sync(''manual'')') AS t(id bigint);
SELECT test.try('SELECT total FROM clerk_sync_all()') AS second_sync;
SELECT dblink_exec('other', 'ROLLBACK');
SELECT dblink_disconnect('other');
SELECT total FROM clerk_sync_all(delete_missing => false);

-- clerk_fetch_user: found (applied, then stale against a newer local row), without email
-- (skipped), 404 (deleted locally, with a tombstone).
SELECT test.reset(), test.scenario('');
CREATE TABLE test.fetched AS
    SELECT (SELECT id FROM test.expected(users) WHERE email IS NOT NULL LIMIT 1) AS with_email,
           (SELECT id FROM test.expected(users) WHERE email IS NULL LIMIT 1) AS without_email
      FROM test.dataset;
SELECT clerk_fetch_user(with_email) AS found FROM test.fetched;
SELECT email IS NOT NULL AS has_email, rate_limit, tombstone FROM test.fetched, test.stored(with_email);
SELECT clerk_apply_event(test.event('user.updated', jsonb_set(u, '{updated_at}', to_jsonb(4102444800000::bigint)))::jsonb)
  FROM test.dataset, test.fetched, jsonb_array_elements(users) u WHERE u->>'id' = with_email;
SELECT clerk_fetch_user(with_email) AS against_newer FROM test.fetched;
SELECT clerk_fetch_user(without_email) AS without_email FROM test.fetched;
SELECT clerk_fetch_user('user_does_not_exist') AS not_found;
SELECT clerk_sync_user('user_gone', 'gone@example.com');
SELECT clerk_fetch_user('user_gone') AS gone;
SELECT * FROM test.stored('user_gone');
SELECT test.try($$SELECT clerk_fetch_user(NULL)$$) AS null_id, test.try($$SELECT clerk_fetch_user('')$$) AS empty_id;
SELECT test.scenario('status=401');
SELECT test.try($$SELECT clerk_fetch_user('user_x')$$) AS unauthorized;
SELECT test.scenario('');
RESET client_min_messages;
