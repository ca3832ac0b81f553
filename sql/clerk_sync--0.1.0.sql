-- clerk_sync 0.1.0
-- Data lives in schema "clerk"; the SQL API lives in the extension's schema (public by default).
\echo Use "CREATE EXTENSION clerk_sync" to load this file. \quit

CREATE SCHEMA clerk;
COMMENT ON SCHEMA clerk IS 'Users synced from Clerk by the clerk_sync extension';
REVOKE ALL ON SCHEMA clerk FROM PUBLIC;

-- Tiers and their daily message limits (NULL = unlimited). Edit freely.
CREATE TABLE clerk.tiers (
    name        text PRIMARY KEY,
    daily_limit int CHECK (daily_limit >= 0)
);
INSERT INTO clerk.tiers (name, daily_limit) VALUES
    ('FREE', 10), ('PRO', 100), ('MAXX', 1000), ('ENTERPRISE', NULL);

-- One row per Clerk user. Application tables may reference clerk.users(id) ON DELETE CASCADE.
CREATE TABLE clerk.users (
    id               text PRIMARY KEY,                -- Clerk user id (user_...)
    email            text,                            -- the PRIMARY email; NULL only for users stored
                                                      -- while clerk_sync.require_email was off
    first_name       text,
    last_name        text,
    username         text,
    image_url        text,
    tier             text NOT NULL DEFAULT 'FREE' REFERENCES clerk.tiers (name) ON UPDATE CASCADE,
    public_metadata  jsonb NOT NULL DEFAULT '{}',
    -- the whole Clerk user object as received; compressed with lz4, not the default pglz, which
    -- took 18% of a backfill's writes in a profile (lz4: 4%)
    raw              jsonb COMPRESSION lz4 NOT NULL,
    clerk_created_at timestamptz,
    clerk_updated_at timestamptz,                     -- orders updates: older events are stale
    synced_at        timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_email_idx ON clerk.users (email);

-- Every user row has its rate-limit row, written in the same transaction. The row carries a copy
-- of the user's tier and of that tier's daily limit, so that the rate limiter's one UPDATE reads
-- nothing else (joining users and tiers made each call about a sixth slower). The copy is made
-- with the row and kept current by triggers on clerk.users and clerk.tiers: never edit it.
CREATE TABLE clerk.rate_limits (
    user_id       text PRIMARY KEY REFERENCES clerk.users (id) ON DELETE CASCADE,
    tier          text NOT NULL,                  -- = clerk.users.tier
    daily_limit   int,                            -- = that tier's clerk.tiers.daily_limit
    message_count int NOT NULL DEFAULT 0,
    last_reset_at timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Tombstones: a late user.updated cannot bring a deleted user back; a genuine re-creation (created
-- after the deletion) can.
CREATE TABLE clerk.deleted_users (
    id          text PRIMARY KEY,
    deleted_at  timestamptz NOT NULL,                 -- when Clerk deleted the user
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The inbox: every webhook delivery applied, by its svix-id, with its outcome and its payload as
-- received (so it can be re-verified or replayed).
CREATE TABLE clerk.webhook_events (
    svix_id     text PRIMARY KEY,
    event_type  text NOT NULL,
    event_at    timestamptz,                          -- the event's own timestamp
    received_at timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('applied', 'stale', 'ignored', 'skipped')),
    user_id     text,
    detail      text,
    payload     text COMPRESSION lz4 NOT NULL
);
CREATE INDEX webhook_events_received_at_idx ON clerk.webhook_events (received_at);
CREATE INDEX webhook_events_user_id_idx ON clerk.webhook_events (user_id);

-- Usage counted for users not (yet) in clerk.users, admitted under clerk_sync.unknown_user_policy
-- = allow_free; their rate-limit row takes it over when they are synced.
CREATE TABLE clerk.pending_usage (
    user_id       text PRIMARY KEY,
    message_count int NOT NULL DEFAULT 0,
    last_reset_at timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every sync run: clerk_sync_all() ('manual'); the background worker's 'delta' and 'full' runs.
-- A failed clerk_sync_all() rolls back entirely, this row included (a SQL function is one
-- transaction): its error is the one raised to the caller.
CREATE TABLE clerk.sync_runs (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('manual', 'delta', 'full')),
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    synced      bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    deleted     bigint NOT NULL DEFAULT 0,
    pages       bigint NOT NULL DEFAULT 0,
    requests    bigint NOT NULL DEFAULT 0,            -- Clerk API requests, retries included
    rate_limited bigint NOT NULL DEFAULT 0,           -- of which answered 429
    error       text,
    detail      text
);
CREATE INDEX sync_runs_started_at_idx ON clerk.sync_runs (started_at);

-- The background worker's progress, one row: it survives crashes and restarts.
CREATE TABLE clerk.sync_state (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    delta_watermark      timestamptz,   -- users updated before it (less an overlap) were seen
    full_pass_started_at timestamptz,   -- the full pass under way (NULL: none)
    full_cursor          text           -- the last user id it committed (resume after it)
);
INSERT INTO clerk.sync_state DEFAULT VALUES;

-- pg_dump keeps the synced data, and the tiers added after CREATE EXTENSION, which seeds the
-- others (a seeded row cannot be dumped too: restoring it would collide with the seed). For the
-- same reason the worker's progress (clerk.sync_state) is not dumped: on a restored database, its
-- first run is a full reconciliation.
SELECT pg_catalog.pg_extension_config_dump('clerk.tiers',
                                           $$WHERE name NOT IN ('FREE', 'PRO', 'MAXX', 'ENTERPRISE')$$);
SELECT pg_catalog.pg_extension_config_dump('clerk.users', '');
SELECT pg_catalog.pg_extension_config_dump('clerk.rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump('clerk.deleted_users', '');
SELECT pg_catalog.pg_extension_config_dump('clerk.webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('clerk.sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('clerk.pending_usage', '');
SELECT pg_catalog.pg_extension_config_dump('clerk.sync_runs_id_seq', '');

------------------------------------------------------------------------------------------------
-- Internal write path. The C++ mapping produces the values; these functions hold every rule
-- about how they land, and every writer of users (webhooks, replays, manual sync) uses them.
------------------------------------------------------------------------------------------------

-- Advisory lock namespaces (first key of pg_advisory_xact_lock(int, int)): 'CLK' + 1 / 2.
-- Writers of one user, and deliveries of one svix-id, are serialised; nothing else is.

-- A user's tier as stored: NULL stays NULL (keep the stored tier, or FREE for a new user), a tier
-- of clerk.tiers stays, anything else becomes FREE with a WARNING (never failing the write).
CREATE FUNCTION clerk._known_tier(p_tier text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_tier IS NULL OR EXISTS (SELECT FROM clerk.tiers WHERE name = p_tier) THEN
        RETURN p_tier;
    END IF;
    RAISE WARNING 'clerk_sync: unknown tier "%", using FREE', p_tier
        USING HINT = 'Add it to clerk.tiers, or fix the user''s public_metadata in Clerk.';
    RETURN 'FREE';
END
$$;

-- Upserts users given as parallel arrays (one element per user, ids distinct) with one
-- set-based statement; returns how many were written ('applied') and how many were 'stale'.
-- Every writer of users goes through it: a page of a full sync, a webhook, clerk_sync_user.
-- The rules:
--   - a user is stale when a tombstone is not older than its creation (a deletion wins, except
--     over a genuine re-creation, which clears the tombstone), or when the stored row's
--     clerk_updated_at is newer (a tie applies: of two events stamped alike, the later delivery
--     must not be lost);
--   - a NULL updated_at (a manual sync) always applies and keeps the stored ordering stamp;
--   - a NULL tier keeps the stored tier (FREE for a new user); so does a NULL public_metadata;
--   - every written user has its clerk.rate_limits row;
--   - every user given is marked seen (synced_at), written or not, so that a full pass does not
--     delete as missing a user whose stored version is newer than Clerk's list.
-- Single-user writers (webhooks, clerk_sync_user) first take the user's advisory lock, so that an
-- upsert and a deletion of one user never interleave; so does the worker for each page it writes,
-- in a short transaction (clerk._lock_users). clerk_sync_all's pages take none (its one long
-- transaction would accumulate a lock per user): its updates are ordered by row locks, and in the
-- one race left, a user deleted by a webhook while its page is written, the next full sync
-- deletes the user again.
CREATE FUNCTION clerk._upsert_users(
    p_ids text[], p_emails text[], p_first_names text[], p_last_names text[], p_usernames text[],
    p_image_urls text[], p_tiers text[], p_public_metadata text[], p_raws text[],
    p_created_ats timestamptz[], p_updated_ats timestamptz[],
    OUT applied bigint, OUT stale bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- A call probes at most 500 keys into tables of any size: index lookups are always right. The
-- plan is made once per session (planning this statement costs more than a webhook's writes),
-- and one made while clerk.users was small would otherwise hash a full scan of the table for
-- every page as a sync fills it.
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    WITH tiers AS MATERIALIZED (
        -- each tier named, resolved (and warned about) once
        SELECT given, clerk._known_tier(given) AS known
          FROM (SELECT DISTINCT t FROM unnest(p_tiers) AS t WHERE t IS NOT NULL) AS d(given)
    ),
    written AS (
        INSERT INTO clerk.users AS u (id, email, first_name, last_name, username, image_url, tier,
                                      public_metadata, raw, clerk_created_at, clerk_updated_at)
        SELECT i.id, i.email, i.first_name, i.last_name, i.username, i.image_url,
               coalesce((SELECT known FROM tiers WHERE given = i.tier), s.tier, 'FREE'),
               coalesce(i.public_metadata::jsonb, s.public_metadata, '{}'), i.raw::jsonb,
               i.created_at, i.updated_at
          FROM unnest(p_ids, p_emails, p_first_names, p_last_names, p_usernames, p_image_urls,
                      p_tiers, p_public_metadata, p_raws, p_created_ats, p_updated_ats)
               AS i(id, email, first_name, last_name, username, image_url, tier, public_metadata,
                    raw, created_at, updated_at)
          LEFT JOIN clerk.users s ON s.id = i.id
         WHERE NOT EXISTS (SELECT FROM clerk.deleted_users d
                            WHERE d.id = i.id AND (i.created_at IS NULL OR d.deleted_at >= i.created_at))
        ON CONFLICT (id) DO UPDATE
           SET email = excluded.email, first_name = excluded.first_name,
               last_name = excluded.last_name, username = excluded.username,
               image_url = excluded.image_url, tier = excluded.tier,
               public_metadata = excluded.public_metadata, raw = excluded.raw,
               clerk_created_at = coalesce(excluded.clerk_created_at, u.clerk_created_at),
               clerk_updated_at = coalesce(excluded.clerk_updated_at, u.clerk_updated_at),
               synced_at = now(), updated_at = now()
         WHERE excluded.clerk_updated_at IS NULL OR u.clerk_updated_at IS NULL
            OR u.clerk_updated_at <= excluded.clerk_updated_at
        RETURNING u.id, u.tier
    ),
    recreated AS (
        DELETE FROM clerk.deleted_users d USING written w WHERE d.id = w.id
    ),
    limits AS (
        -- a new user's row takes over what was counted while the user was unknown (an existing
        -- row's copy of the tier follows by trigger)
        INSERT INTO clerk.rate_limits (user_id, tier, daily_limit, message_count, last_reset_at)
        SELECT w.id, w.tier, t.daily_limit, coalesce(p.message_count, 0), coalesce(p.last_reset_at, now())
          FROM written w JOIN clerk.tiers t ON t.name = w.tier
          LEFT JOIN clerk.pending_usage p ON p.user_id = w.id
        ON CONFLICT (user_id) DO NOTHING
    ),
    pending_taken AS (
        DELETE FROM clerk.pending_usage p USING written w WHERE p.user_id = w.id
    )
    SELECT count(*) INTO applied FROM written;

    stale := cardinality(p_ids) - applied;
    IF stale > 0 THEN
        UPDATE clerk.users SET synced_at = now() WHERE id = ANY (p_ids) AND synced_at < now();
    END IF;
END
$$;

-- Upserts one user (see clerk._upsert_users); returns 'applied' or 'stale'.
CREATE FUNCTION clerk._upsert_user(
    p_id text, p_email text, p_first_name text, p_last_name text, p_username text,
    p_image_url text, p_tier text, p_public_metadata text, p_raw text,
    p_created_at timestamptz, p_updated_at timestamptz)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN u.applied > 0 THEN 'applied' ELSE 'stale' END
      FROM clerk._upsert_users(ARRAY[p_id], ARRAY[p_email], ARRAY[p_first_name], ARRAY[p_last_name],
                               ARRAY[p_username], ARRAY[p_image_url], ARRAY[p_tier],
                               ARRAY[p_public_metadata], ARRAY[p_raw], ARRAY[p_created_at],
                               ARRAY[p_updated_at]) AS u
$$;

-- Deletes one user (its rate-limit row goes by cascade) and keeps a tombstone. 'stale' when the
-- stored user was created after the deletion (a re-creation the deletion predates).
CREATE FUNCTION clerk._delete_user(p_id text, p_deleted_at timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted_at timestamptz := coalesce(p_deleted_at, now());
BEGIN
    PERFORM pg_advisory_xact_lock(1129073410, hashtext(p_id));
    IF EXISTS (SELECT FROM clerk.users WHERE id = p_id AND clerk_created_at > deleted_at) THEN
        RETURN 'stale';
    END IF;
    DELETE FROM clerk.users WHERE id = p_id;
    INSERT INTO clerk.deleted_users AS d (id, deleted_at) VALUES (p_id, deleted_at)
        ON CONFLICT (id) DO UPDATE SET deleted_at = greatest(d.deleted_at, excluded.deleted_at),
                                       recorded_at = now();
    RETURN 'applied';
END
$$;

-- Takes the write lock of every user given, the one single-user writers take (in a fixed order,
-- so that two lockers never deadlock), for a page written in a short transaction of its own (the
-- worker's). A webhook deleting one of these users then waits for the page to commit, or the
-- page for the webhook, instead of both going ahead and leaving the deleted user stored.
-- clerk_sync_all, one long transaction, takes none: it would hold a lock per user to its end.
CREATE FUNCTION clerk._lock_users(p_ids text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- one query (the locks are taken as the sorted keys come out of the subquery)
    PERFORM pg_advisory_xact_lock(1129073410, key)
       FROM (SELECT DISTINCT hashtext(id) AS key FROM unnest(p_ids) AS id ORDER BY 1) AS keys;
END
$$;

-- Marks users as seen in Clerk by the current pass without writing them (users Clerk has but
-- clerk_sync skips, such as users without email): a full sync must not delete them as missing.
CREATE FUNCTION clerk._mark_seen(p_ids text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE clerk.users SET synced_at = now() WHERE id = ANY (p_ids) AND synced_at < now()
$$;

-- After a complete pass over Clerk's users: deletes (with tombstones) the users not seen since
-- p_pass_start, unless they are more than p_max_fraction of the table (then nothing is deleted and
-- a WARNING says why: an outage returning empty pages must never wipe the table).
CREATE FUNCTION clerk._delete_missing(p_pass_start timestamptz, p_max_fraction float8,
                                      OUT deleted bigint, OUT missing bigint, OUT total bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT count(*), count(*) FILTER (WHERE synced_at < p_pass_start) INTO total, missing FROM clerk.users;
    deleted := 0;
    IF missing = 0 THEN
        RETURN;
    END IF;
    IF missing > p_max_fraction * total THEN
        RAISE WARNING 'clerk_sync: % of % users were not seen in Clerk, more than clerk_sync.max_delete_fraction (%); none deleted',
                      missing, total, p_max_fraction
            USING HINT = 'If those users really were deleted in Clerk, raise clerk_sync.max_delete_fraction for one run.';
        RETURN;
    END IF;
    -- a row written since the pass began (a webhook) has a newer synced_at and is not deleted
    WITH gone AS (
        DELETE FROM clerk.users WHERE synced_at < p_pass_start RETURNING id
    ),
    tombstones AS (
        INSERT INTO clerk.deleted_users AS d (id, deleted_at)
        SELECT id, p_pass_start FROM gone
        ON CONFLICT (id) DO UPDATE SET deleted_at = greatest(d.deleted_at, excluded.deleted_at), recorded_at = now()
    )
    SELECT count(*) INTO deleted FROM gone;
END
$$;

-- Starts a sync run: takes the database's sync lock (55P03 at once if another sync holds it) and
-- records the run. The lock is the transaction's: clerk_sync_all() runs in one transaction.
CREATE FUNCTION clerk._begin_sync(p_kind text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run_id bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1129073411, 0) THEN
        RAISE EXCEPTION 'clerk_sync: another sync is already running in this database'
            USING ERRCODE = '55P03',
                  HINT = 'Wait for it to finish (clerk.sync_runs shows it), or stop it with pg_cancel_backend().';
    END IF;
    INSERT INTO clerk.sync_runs (kind) VALUES (p_kind) RETURNING id INTO run_id;
    RETURN run_id;
END
$$;

CREATE FUNCTION clerk._finish_sync(p_id bigint, p_status text, p_synced bigint, p_skipped bigint,
                                   p_failed bigint, p_deleted bigint, p_pages bigint,
                                   p_requests bigint, p_rate_limited bigint,
                                   p_error text, p_detail text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE clerk.sync_runs
       SET finished_at = clock_timestamp(), status = p_status, synced = p_synced, skipped = p_skipped,
           failed = p_failed, deleted = p_deleted, pages = p_pages, requests = p_requests,
           rate_limited = p_rate_limited, error = p_error, detail = p_detail
     WHERE id = p_id
$$;

-- The background worker starts a run: takes the database's sync lock for its session (nothing
-- is returned if a sync holds it), closes the records of runs a crash interrupted, decides what
-- to do, and records the run. A full pass is due when asked for, when one was interrupted (it
-- resumes after its cursor), or when none succeeded within p_full_interval; a delta sweep
-- otherwise.
CREATE FUNCTION clerk._worker_begin(p_full_requested boolean, p_full_interval interval,
                                    OUT run_id bigint, OUT kind text, OUT cursor text,
                                    OUT pass_started_at timestamptz, OUT watermark timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st clerk.sync_state;
BEGIN
    IF NOT pg_try_advisory_lock(1129073411, 0) THEN
        RETURN;
    END IF;
    UPDATE clerk.sync_runs SET status = 'failed', finished_at = clock_timestamp(),
                               error = 'interrupted (the worker stopped or crashed)'
     WHERE status = 'running' AND sync_runs.kind IN ('delta', 'full');
    SELECT * INTO st FROM clerk.sync_state;
    IF p_full_requested OR st.full_cursor IS NOT NULL OR st.full_pass_started_at IS NOT NULL
       OR NOT EXISTS (SELECT FROM clerk.sync_runs r
                       WHERE r.kind = 'full' AND r.status = 'succeeded'
                         AND r.finished_at > now() - p_full_interval) THEN
        kind := 'full';
        IF st.full_pass_started_at IS NULL THEN
            UPDATE clerk.sync_state SET full_pass_started_at = now(), full_cursor = NULL
             RETURNING * INTO st;
        END IF;
    ELSE
        kind := 'delta';
    END IF;
    INSERT INTO clerk.sync_runs (kind) VALUES (kind) RETURNING id INTO run_id;
    cursor := st.full_cursor;
    pass_started_at := st.full_pass_started_at;
    watermark := st.delta_watermark;
    RETURN NEXT;
END
$$;

-- A page of a worker run is committed: its counts, and for a full pass its cursor, in the same
-- transaction as its users.
CREATE FUNCTION clerk._worker_progress(p_run_id bigint, p_cursor text, p_synced bigint,
                                       p_skipped bigint, p_failed bigint, p_pages bigint,
                                       p_requests bigint, p_rate_limited bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE clerk.sync_state SET full_cursor = coalesce(p_cursor, full_cursor)
     WHERE p_cursor IS NOT NULL;
    UPDATE clerk.sync_runs
       SET synced = p_synced, skipped = p_skipped, failed = p_failed, pages = p_pages,
           requests = p_requests, rate_limited = p_rate_limited
     WHERE id = p_run_id;
$$;

-- A worker run's end: a complete full pass clears its cursor and sets the delta watermark to
-- its start; a delta sweep moves the watermark to the newest update it saw. Old runs are pruned.
CREATE FUNCTION clerk._worker_end(p_kind text, p_newest timestamptz, p_retention interval,
                                  p_inbox_retention interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_kind = 'full' THEN
        UPDATE clerk.sync_state
           SET delta_watermark = greatest(delta_watermark, full_pass_started_at, p_newest),
               full_pass_started_at = NULL, full_cursor = NULL;
    ELSIF p_newest IS NOT NULL THEN
        UPDATE clerk.sync_state SET delta_watermark = greatest(delta_watermark, p_newest);
    END IF;
    DELETE FROM clerk.sync_runs WHERE finished_at < now() - p_retention;
    -- The inbox only has to outlive Svix's retries (about a day) to keep deliveries exactly once;
    -- an older delivery sent again is stale by its timestamps anyway.
    IF p_inbox_retention IS NOT NULL THEN
        DELETE FROM clerk.webhook_events WHERE received_at < now() - p_inbox_retention;
    END IF;
END
$$;

-- Applies one mapped webhook event and records it in the inbox, atomically. p_action is what the
-- C++ mapping decided: 'upsert', 'delete', 'skipped' or 'ignored'. A NULL p_svix_id (the trusted
-- path) skips the duplicate check and is recorded under a generated id.
CREATE FUNCTION clerk._apply_event(
    p_svix_id text, p_type text, p_event_at timestamptz, p_payload text, p_action text,
    p_detail text, p_user_id text, p_email text, p_first_name text, p_last_name text,
    p_username text, p_image_url text, p_tier text, p_public_metadata text, p_raw text,
    p_created_at timestamptz, p_updated_at timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
    detail text := p_detail;
BEGIN
    IF p_svix_id IS NOT NULL THEN
        -- a redelivery waits for the first delivery's transaction, then sees its inbox row
        PERFORM pg_advisory_xact_lock(1129073409, hashtext(p_svix_id));
        IF EXISTS (SELECT FROM clerk.webhook_events WHERE svix_id = p_svix_id) THEN
            RETURN 'duplicate';
        END IF;
    END IF;

    IF p_user_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1129073410, hashtext(p_user_id));
    END IF;

    CASE p_action
    WHEN 'upsert' THEN
        result := clerk._upsert_user(p_user_id, p_email, p_first_name, p_last_name, p_username,
                                     p_image_url, p_tier, p_public_metadata, p_raw,
                                     p_created_at, p_updated_at);
        IF result = 'stale' THEN
            detail := 'a newer version of the user, or its deletion, is already stored';
        END IF;
    WHEN 'delete' THEN
        result := clerk._delete_user(p_user_id, p_event_at);
        IF result = 'stale' THEN
            detail := 'the stored user was created after this deletion';
        END IF;
    WHEN 'skipped', 'ignored' THEN
        result := p_action;
    ELSE
        RAISE EXCEPTION 'clerk_sync: unknown event action "%"', p_action;
    END CASE;

    INSERT INTO clerk.webhook_events (svix_id, event_type, event_at, outcome, user_id, detail, payload)
    VALUES (coalesce(p_svix_id, 'manual_' || gen_random_uuid()), p_type, p_event_at, result,
            p_user_id, detail, p_payload);
    RETURN result;
END
$$;

------------------------------------------------------------------------------------------------
-- SQL API
------------------------------------------------------------------------------------------------

-- The webhook endpoint's entry point: the body exactly as received and the request headers as a
-- JSON object. Verifies the Svix signature, applies the event, returns its outcome.
-- Runs as the extension owner: a role granted only EXECUTE can apply events but read nothing.
CREATE FUNCTION clerk_apply_event(payload text, headers jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'clerk_apply_event_signed'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- The trusted path (no signature, no duplicate check), for replays and administration.
CREATE FUNCTION clerk_apply_event(event jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'clerk_apply_event_trusted'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- The signature and timestamp check alone, with the clock given.
CREATE FUNCTION clerk_webhook_verify(payload text, headers jsonb, secret text, at timestamptz DEFAULT now())
RETURNS boolean
AS 'MODULE_PATHNAME', 'clerk_webhook_verify'
LANGUAGE C STABLE;

-- The manual single-user sync of the old app. Keeps an existing user's tier unless one is given;
-- a user deleted in Clerk (tombstoned) is not brought back. Returns 'applied' or 'stale'.
CREATE FUNCTION clerk_sync_user(user_id text, email text, first_name text DEFAULT NULL,
                                last_name text DEFAULT NULL, image_url text DEFAULT NULL,
                                tier text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    IF coalesce(user_id, '') = '' THEN
        RAISE EXCEPTION 'clerk_sync_user: user_id must not be empty' USING ERRCODE = '22023';
    END IF;
    IF coalesce(email, '') = '' THEN
        RAISE EXCEPTION 'clerk_sync_user: email must not be empty' USING ERRCODE = '22023';
    END IF;
    IF tier IS NOT NULL AND NOT EXISTS (SELECT FROM clerk.tiers t WHERE t.name = tier) THEN
        RAISE EXCEPTION 'clerk_sync_user: unknown tier "%"', tier USING ERRCODE = '22023',
            HINT = 'The tiers are the rows of clerk.tiers.';
    END IF;
    PERFORM pg_advisory_xact_lock(1129073410, hashtext(user_id));
    result := clerk._upsert_user(
        user_id, email, first_name, last_name, NULL, image_url, tier, NULL,
        jsonb_build_object('id', user_id, 'email', email, 'first_name', first_name,
                           'last_name', last_name, 'image_url', image_url, 'source', 'clerk_sync_user')::text,
        NULL, NULL);
    RETURN result;
END
$$;

-- Backfills and reconciles every Clerk user through the Backend API (see README).
CREATE FUNCTION clerk_sync_all(delete_missing boolean DEFAULT true,
                               OUT synced bigint, OUT skipped bigint, OUT failed bigint,
                               OUT deleted bigint, OUT total bigint, OUT pages bigint,
                               OUT elapsed interval)
RETURNS record
AS 'MODULE_PATHNAME', 'clerk_sync_all'
LANGUAGE C VOLATILE;

-- Fetches one user from Clerk and applies it; a 404 deletes it locally with a tombstone.
-- Returns applied, stale, skipped or deleted.
CREATE FUNCTION clerk_fetch_user(user_id text)
RETURNS text
AS 'MODULE_PATHNAME', 'clerk_fetch_user'
LANGUAGE C VOLATILE;

------------------------------------------------------------------------------------------------
-- Per-user daily quotas by tier
------------------------------------------------------------------------------------------------

-- clerk.rate_limits' copy of the user's tier and of its daily limit follows every change of either:
-- a user's new tier (from a sync, a webhook, an administrator's UPDATE, or a tier's rename through
-- ON UPDATE CASCADE), and a tier's new limit or name. SECURITY DEFINER: a role allowed to edit
-- clerk.tiers or clerk.users need not be allowed to write clerk.rate_limits.
CREATE FUNCTION clerk._rate_limits_follow_user()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE clerk.rate_limits r
       SET tier = NEW.tier, daily_limit = (SELECT t.daily_limit FROM clerk.tiers t WHERE t.name = NEW.tier)
     WHERE r.user_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER rate_limits_follow_user AFTER UPDATE OF tier ON clerk.users
    FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier)
    EXECUTE FUNCTION clerk._rate_limits_follow_user();

CREATE FUNCTION clerk._rate_limits_follow_tier()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- on a rename, the users' cascade may have renamed some rows' copies already
    UPDATE clerk.rate_limits r SET tier = NEW.name, daily_limit = NEW.daily_limit
     WHERE r.tier IN (OLD.name, NEW.name);
    RETURN NULL;
END
$$;
CREATE TRIGGER rate_limits_follow_tier AFTER UPDATE OF name, daily_limit ON clerk.tiers
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.daily_limit IS DISTINCT FROM NEW.daily_limit)
    EXECUTE FUNCTION clerk._rate_limits_follow_tier();

-- A user's daily window runs from the local midnight of its day in time zone `tz` to the next one
-- (23 or 25 hours later on the days daylight saving time changes). Plain STABLE SQL expressions,
-- inlined where they are used: the rate limiter evaluates them without running a query.
CREATE FUNCTION clerk.rate_limit_window_start(at timestamptz, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.date_trunc('day', at AT TIME ZONE tz) AT TIME ZONE tz
$$;
CREATE FUNCTION clerk.rate_limit_reset_at(at timestamptz, tz text)
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT (pg_catalog.date_trunc('day', at AT TIME ZONE tz) OPERATOR(pg_catalog.+) interval '1 day') AT TIME ZONE tz
$$;

-- A user not in clerk.users: fetched from Clerk when clerk_sync.fetch_missing_users is on.
-- Returns 'found', 'unknown_user' (Clerk does not know the user, or it has no email and is not
-- stored), or 'clerk_unreachable' (no key configured, Clerk down or refusing the key).
CREATE FUNCTION clerk._fetch_missing_user(p_user_id text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT current_setting('clerk_sync.fetch_missing_users')::boolean THEN
        RETURN 'unknown_user';
    END IF;
    -- concurrent callers for one unknown user fetch it once
    PERFORM pg_advisory_xact_lock(1129073410, hashtext(p_user_id));
    IF NOT EXISTS (SELECT FROM clerk.users WHERE id = p_user_id) THEN
        BEGIN
            PERFORM @extschema@.clerk_fetch_user(p_user_id);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'clerk_sync: could not fetch user % from Clerk: %', p_user_id, SQLERRM;
            RETURN 'clerk_unreachable';
        END;
    END IF;
    RETURN CASE WHEN EXISTS (SELECT FROM clerk.users WHERE id = p_user_id) THEN 'found' ELSE 'unknown_user' END;
END
$$;

-- The rate limiter's slow path, for everything clerk_rate_limit_consume's one UPDATE did not
-- admit, and for clerk_rate_limit_check (p_cost = 0): validates the input, reports a known user's
-- state (a denial: limit_exceeded), makes a missing rate-limit row, fetches an unknown user from
-- Clerk, and applies clerk_sync.unknown_user_policy. Once the row or the user exists, the call
-- starts again from the public function, so that the admitting UPDATE stays in one place.
CREATE FUNCTION clerk._rate_limit(p_user_id text, p_cost int,
                                  OUT allowed boolean, OUT used int, OUT daily_limit int,
                                  OUT remaining int, OUT reset_at timestamptz, OUT tier text,
                                  OUT reason text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    tz constant text := current_setting('clerk_sync.rate_limit_timezone');
    window_start constant timestamptz := clerk.rate_limit_window_start(statement_timestamp(), tz);
    found_user text;
    has_row boolean;
BEGIN
    IF coalesce(p_user_id, '') = '' THEN
        RAISE EXCEPTION 'clerk_sync: user_id must not be NULL or empty' USING ERRCODE = '22023';
    END IF;
    IF p_cost IS NULL OR p_cost < 0 THEN
        RAISE EXCEPTION 'clerk_sync: cost must be a positive number, not %', coalesce(p_cost::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    reset_at := clerk.rate_limit_reset_at(statement_timestamp(), tz);

    SELECT u.id, CASE WHEN r.last_reset_at < window_start THEN 0 ELSE r.message_count END,
           r.daily_limit, r.tier, r.user_id IS NOT NULL
      INTO found_user, used, daily_limit, tier, has_row
      FROM clerk.users u LEFT JOIN clerk.rate_limits r ON r.user_id = u.id
     WHERE u.id = p_user_id;
    -- A cost that no finite limit admits is the caller's mistake, unless the user's tier is
    -- unlimited (a user whose row is missing is judged once the row is made).
    IF p_cost > (SELECT max(t.daily_limit) FROM clerk.tiers t)
       AND (found_user IS NULL OR (has_row AND daily_limit IS NOT NULL)) THEN
        RAISE EXCEPTION 'clerk_sync: cost % is larger than any daily limit', p_cost USING ERRCODE = '22023';
    END IF;
    IF found_user IS NOT NULL AND has_row THEN
        -- a known user whose call does not fit (or who is only asked about)
        remaining := greatest(daily_limit - used, 0);
        allowed := p_cost = 0 AND (daily_limit IS NULL OR used < daily_limit);
        reason := CASE WHEN allowed THEN NULL ELSE 'limit_exceeded' END;
        RETURN;
    ELSIF found_user IS NOT NULL THEN
        -- every user has its row; should one be missing, make it
        INSERT INTO clerk.rate_limits (user_id, tier, daily_limit)
        SELECT u.id, u.tier, t.daily_limit
          FROM clerk.users u JOIN clerk.tiers t ON t.name = u.tier WHERE u.id = p_user_id
        ON CONFLICT DO NOTHING;
        reason := 'found';
    ELSE
        -- an unknown user: ask Clerk
        reason := clerk._fetch_missing_user(p_user_id);
    END IF;
    IF reason = 'found' THEN
        IF p_cost > 0 THEN
            SELECT * INTO allowed, used, daily_limit, remaining, reset_at, tier, reason
              FROM @extschema@.clerk_rate_limit_consume(p_user_id, p_cost);
        ELSE
            SELECT * INTO allowed, used, daily_limit, remaining, reset_at, tier, reason
              FROM @extschema@.clerk_rate_limit_check(p_user_id);
        END IF;
        RETURN;
    END IF;

    -- Never fail open silently: deny, unless the policy admits unknown users under FREE limits,
    -- counting their usage until they appear.
    tier := 'FREE';
    daily_limit := (SELECT t.daily_limit FROM clerk.tiers t WHERE t.name = 'FREE');
    IF current_setting('clerk_sync.unknown_user_policy') = 'deny' THEN
        allowed := false;
        used := 0;
        remaining := 0;
        RETURN;
    END IF;
    IF p_cost > 0 THEN
        INSERT INTO clerk.pending_usage AS p (user_id, message_count, last_reset_at)
        VALUES (p_user_id, p_cost, window_start)
        ON CONFLICT (user_id) DO UPDATE
           SET message_count = CASE WHEN p.last_reset_at < window_start THEN 0 ELSE p.message_count END + p_cost,
               last_reset_at = greatest(p.last_reset_at, window_start), updated_at = now()
         WHERE daily_limit IS NULL
            OR CASE WHEN p.last_reset_at < window_start THEN 0 ELSE p.message_count END + p_cost <= daily_limit
        RETURNING p.message_count INTO used;
        allowed := FOUND AND (daily_limit IS NULL OR used <= daily_limit);
    END IF;
    IF NOT coalesce(allowed, false) THEN
        SELECT CASE WHEN p.last_reset_at < window_start THEN 0 ELSE p.message_count END INTO used
          FROM clerk.pending_usage p WHERE p.user_id = p_user_id;
        used := coalesce(used, 0);
        allowed := p_cost = 0 AND (daily_limit IS NULL OR used < daily_limit);
        IF NOT allowed THEN
            reason := 'limit_exceeded';
        END IF;
    END IF;
    remaining := greatest(daily_limit - used, 0);
END
$$;

-- Consumes `cost` messages of the user's daily quota if they fit. Atomic: the window's lazy reset,
-- the limit check and the increment are one UPDATE of the user's row, so concurrent callers queue
-- on the row lock and each sees the count the previous one left; a denied call changes nothing.
-- The row's copy of the tier and its limit is current (see clerk.rate_limits), so a tier change
-- applies at the next call and keeps the usage so far. Anything this UPDATE does not admit (a
-- denial, an unknown user, a missing row, a bad input) goes to clerk._rate_limit.
-- This is the hot path: the UPDATE reads one row and nothing else, and the window is computed by
-- plain expressions before it (the joins, a subquery and a function in its FROM made each call
-- about a fifth slower, mostly in executor set-up).
CREATE FUNCTION clerk_rate_limit_consume(user_id text, cost int DEFAULT 1,
                                         OUT allowed boolean, OUT used int, OUT daily_limit int,
                                         OUT remaining int, OUT reset_at timestamptz, OUT tier text,
                                         OUT reason text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    tz constant text := current_setting('clerk_sync.rate_limit_timezone');
    window_start constant timestamptz := clerk.rate_limit_window_start(statement_timestamp(), tz);
BEGIN
    IF cost IS NULL OR cost <= 0 THEN
        RAISE EXCEPTION 'clerk_sync: cost must be a positive number, not %', coalesce(cost::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    UPDATE clerk.rate_limits r
       SET message_count = CASE WHEN r.last_reset_at < window_start THEN 0 ELSE r.message_count END + cost,
           last_reset_at = greatest(r.last_reset_at, window_start),
           updated_at = now()
     WHERE r.user_id = clerk_rate_limit_consume.user_id
       AND (r.daily_limit IS NULL   -- unlimited
            OR CASE WHEN r.last_reset_at < window_start THEN 0 ELSE r.message_count END + cost <= r.daily_limit)
    RETURNING true, r.message_count, r.daily_limit, r.daily_limit - r.message_count, r.tier, NULL
         INTO allowed, used, daily_limit, remaining, tier, reason;
    IF FOUND THEN
        reset_at := clerk.rate_limit_reset_at(statement_timestamp(), tz);
    ELSE
        SELECT * INTO allowed, used, daily_limit, remaining, reset_at, tier, reason
          FROM clerk._rate_limit(clerk_rate_limit_consume.user_id, cost);
    END IF;
END
$$;

-- The same row, without consuming anything.
CREATE FUNCTION clerk_rate_limit_check(user_id text,
                                       OUT allowed boolean, OUT used int, OUT daily_limit int,
                                       OUT remaining int, OUT reset_at timestamptz, OUT tier text,
                                       OUT reason text)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM clerk._rate_limit(user_id, 0)
$$;

-- An administrator's reset of the user's current window.
CREATE FUNCTION clerk_rate_limit_reset(user_id text,
                                       OUT allowed boolean, OUT used int, OUT daily_limit int,
                                       OUT remaining int, OUT reset_at timestamptz, OUT tier text,
                                       OUT reason text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF coalesce(user_id, '') = '' THEN
        RAISE EXCEPTION 'clerk_sync: user_id must not be NULL or empty' USING ERRCODE = '22023';
    END IF;
    UPDATE clerk.rate_limits r SET message_count = 0, last_reset_at = now(), updated_at = now()
     WHERE r.user_id = clerk_rate_limit_reset.user_id;
    DELETE FROM clerk.pending_usage p WHERE p.user_id = clerk_rate_limit_reset.user_id;
    SELECT * INTO allowed, used, daily_limit, remaining, reset_at, tier, reason
      FROM clerk._rate_limit(clerk_rate_limit_reset.user_id, 0);
END
$$;

------------------------------------------------------------------------------------------------
-- The background worker: status and control
------------------------------------------------------------------------------------------------

CREATE FUNCTION clerk._worker_status(OUT worker_pid int, OUT state text, OUT run_pid int,
                                     OUT next_run_at timestamptz, OUT paused_until timestamptz,
                                     OUT consecutive_failures int, OUT rate_budget int)
RETURNS record
AS 'MODULE_PATHNAME', 'clerk_worker_status'
LANGUAGE C VOLATILE;

-- One row: what the worker is doing, its last runs, and the shared rate budget.
CREATE VIEW clerk.sync_status AS
SELECT w.worker_pid, w.state, w.run_pid, w.next_run_at, w.consecutive_failures,
       (SELECT max(finished_at) FROM clerk.sync_runs WHERE kind = 'delta' AND status = 'succeeded') AS last_delta_at,
       (SELECT max(finished_at) FROM clerk.sync_runs WHERE kind = 'full' AND status = 'succeeded') AS last_full_at,
       (SELECT error FROM clerk.sync_runs WHERE status = 'failed' ORDER BY id DESC LIMIT 1) AS last_error,
       s.delta_watermark AS watermark,
       s.full_pass_started_at AS full_pass_started_at, s.full_cursor AS full_pass_cursor,
       w.rate_budget AS rate_budget_per_10s, w.paused_until AS rate_budget_paused_until
  FROM clerk._worker_status() AS w, clerk.sync_state AS s;

-- Makes the worker run now (a full reconciliation with `full`), without waiting for the interval.
-- Returns false when no worker is running (clerk_sync not preloaded, or sync_interval off).
CREATE FUNCTION clerk_sync_wakeup(full boolean DEFAULT false)
RETURNS boolean
AS 'MODULE_PATHNAME', 'clerk_sync_wakeup'
LANGUAGE C VOLATILE STRICT;

-- Nothing is executable by PUBLIC but the pure verification function.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA clerk FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_apply_event(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_apply_event(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_sync_user(text, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_sync_all(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_fetch_user(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_rate_limit_consume(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_rate_limit_check(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_rate_limit_reset(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION clerk_sync_wakeup(boolean) FROM PUBLIC;
