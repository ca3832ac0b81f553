-- Per-user daily quotas: clerk_rate_limit_consume / _check / _reset.
SET client_min_messages = warning;
SELECT test.reset();
DELETE FROM clerk.tiers WHERE name = 'gold';
SELECT clerk_sync_user('rl_free', 'free@example.com'),
       clerk_sync_user('rl_pro', 'pro@example.com', tier => 'PRO'),
       clerk_sync_user('rl_ent', 'ent@example.com', tier => 'ENTERPRISE');

-- The window of "now" in the configured zone (UTC by default), for comparing reset_at.
CREATE FUNCTION test.next_midnight(tz text DEFAULT current_setting('clerk_sync.rate_limit_timezone'))
RETURNS timestamptz LANGUAGE sql AS $$ SELECT (date_trunc('day', statement_timestamp() AT TIME ZONE tz) + interval '1 day') AT TIME ZONE tz $$;

-- Calls clerk_rate_limit_consume `times` times, one call after the other.
CREATE FUNCTION test.consume_times(p_user_id text, times int)
RETURNS TABLE (n int, allowed boolean, used int, daily_limit int, remaining int, reset_at timestamptz,
               tier text, reason text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..times LOOP
        RETURN QUERY SELECT i, c.* FROM clerk_rate_limit_consume(p_user_id) AS c;
    END LOOP;
END
$$;

-- FREE admits exactly 10 a day; a denied call consumes nothing.
SELECT n, allowed, used, daily_limit, remaining, tier, reason, reset_at = test.next_midnight() AS resets_at_midnight
  FROM test.consume_times('rl_free', 12);
SELECT message_count FROM clerk.rate_limits WHERE user_id = 'rl_free';
-- A cost that does not fit is denied whole, even when some quota is left.
SELECT allowed, used, remaining, reason FROM clerk_rate_limit_consume('rl_pro', 95);
SELECT allowed, used, remaining, reason FROM clerk_rate_limit_consume('rl_pro', 6);
SELECT allowed, used, remaining, reason FROM clerk_rate_limit_consume('rl_pro', 5);
-- Unlimited (daily_limit NULL): always admitted, usage still counted.
SELECT allowed, used, daily_limit, remaining, tier FROM clerk_rate_limit_consume('rl_ent', 1000);
SELECT allowed, used, daily_limit, remaining, tier FROM clerk_rate_limit_consume('rl_ent', 1000);
-- ... even a cost above every finite limit (for any other tier, an error: see the bad inputs)
SELECT allowed, used, daily_limit, remaining, tier FROM clerk_rate_limit_consume('rl_ent', 5000);
-- check: the same row, consuming nothing
SELECT allowed, used, daily_limit, remaining, tier, reason FROM clerk_rate_limit_check('rl_free');
SELECT allowed, used, remaining FROM clerk_rate_limit_check('rl_pro');
SELECT message_count FROM clerk.rate_limits WHERE user_id = 'rl_pro';

-- The window resets lazily at the next call after midnight (here: the stored window is yesterday's).
UPDATE clerk.rate_limits SET last_reset_at = last_reset_at - interval '1 day' WHERE user_id = 'rl_free';
SELECT allowed, used, remaining FROM clerk_rate_limit_check('rl_free');
SELECT allowed, used, remaining FROM clerk_rate_limit_consume('rl_free');
SELECT message_count, last_reset_at = (test.next_midnight() - interval '1 day') AS window_is_today
  FROM clerk.rate_limits WHERE user_id = 'rl_free';

-- Windows follow the zone's midnight, DST included: 23- and 25-hour days.
SET timezone = 'UTC';
SELECT tz, at, window_start, reset_at, reset_at - window_start AS length
  FROM (VALUES ('UTC', '2026-03-08 12:00:00+00'::timestamptz),
               ('Asia/Kolkata', '2026-03-08 20:00:00+00'),    -- already the 9th in India
               ('America/New_York', '2026-03-08 12:00:00+00'), -- spring forward: 23 hours
               ('America/New_York', '2026-11-01 12:00:00+00'), -- fall back: 25 hours
               ('Europe/Berlin', '2026-03-29 00:30:00+00'))    -- the 29th started at 23:00 UTC
       AS t(tz, at),
       LATERAL (SELECT clerk.rate_limit_window_start(at, tz), clerk.rate_limit_reset_at(at, tz))
               AS w(window_start, reset_at)
 ORDER BY tz, at;
SET clerk_sync.rate_limit_timezone = 'Asia/Kolkata';
SELECT reset_at = test.next_midnight('Asia/Kolkata') AS resets_at_india_midnight,
       extract(hour FROM reset_at) AS utc_hour, extract(minute FROM reset_at) AS utc_minute
  FROM clerk_rate_limit_check('rl_free');
SET clerk_sync.rate_limit_timezone = 'Nowhere/Atlantis';
SELECT test.try($$SELECT allowed FROM clerk_rate_limit_check('rl_free')$$) AS bad_zone;
RESET clerk_sync.rate_limit_timezone;

-- A tier change (clerk.tiers edit, or the user's metadata) applies at the next call; usage is kept.
SELECT allowed, used, daily_limit FROM clerk_rate_limit_consume('rl_free', 9);
SELECT allowed, used, daily_limit, reason FROM clerk_rate_limit_consume('rl_free');
UPDATE clerk.tiers SET daily_limit = 20 WHERE name = 'FREE';
SELECT allowed, used, daily_limit, remaining FROM clerk_rate_limit_consume('rl_free');
UPDATE clerk.tiers SET daily_limit = 10 WHERE name = 'FREE';
SELECT clerk_apply_event(test.event('user.updated', test.user_json('rl_free', 1700000000000, 'free@example.com',
                                                                   metadata => '{"tier": "MAXX"}'))::jsonb);
SELECT allowed, used, daily_limit, remaining, tier FROM clerk_rate_limit_consume('rl_free');
-- ... and so does an administrator's edit of the user, and a tier renamed with a new limit.
UPDATE clerk.users SET tier = 'PRO' WHERE id = 'rl_free';
SELECT allowed, used, daily_limit, remaining, tier FROM clerk_rate_limit_consume('rl_free');
UPDATE clerk.tiers SET name = 'PRO_PLUS', daily_limit = 150 WHERE name = 'PRO';
SELECT allowed, used, daily_limit, remaining, tier FROM clerk_rate_limit_consume('rl_free');
UPDATE clerk.tiers SET name = 'PRO', daily_limit = 100 WHERE name = 'PRO_PLUS';
SELECT clerk_apply_event(test.event('user.updated', test.user_json('rl_free', 1700000000001, 'free@example.com',
                                                                   metadata => '{"tier": "FREE"}'))::jsonb);
-- The limiter's copy of every user's tier and limit equals clerk.users and clerk.tiers.
SELECT count(*) AS copies_out_of_date
  FROM clerk.users u JOIN clerk.tiers t ON t.name = u.tier JOIN clerk.rate_limits r ON r.user_id = u.id
 WHERE r.tier <> u.tier OR r.daily_limit IS DISTINCT FROM t.daily_limit;

-- An unknown user is fetched from Clerk (the fake), stored, then limited.
CREATE TABLE test.unknown AS
    SELECT id FROM test.expected((SELECT users FROM test.dataset)) WHERE email IS NOT NULL LIMIT 1;
SELECT allowed, used, daily_limit, reason FROM test.unknown, clerk_rate_limit_consume(id);
SELECT count(*) AS fetched FROM clerk.users u JOIN test.unknown USING (id);
-- Unknown to Clerk (404): denied by default, admitted under FREE limits with allow_free.
SELECT allowed, used, daily_limit, remaining, tier, reason FROM clerk_rate_limit_consume('user_not_in_clerk');
SET clerk_sync.unknown_user_policy = 'allow_free';
SELECT n, allowed, used, remaining, reason FROM test.consume_times('user_not_in_clerk', 11) WHERE n IN (1, 10, 11);
-- ... and once the user appears (created after the 404 left its tombstone), its rate-limit row
-- takes over the usage counted meanwhile.
SELECT clerk_apply_event(test.event('user.created',
           test.user_json('user_not_in_clerk', (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000,
                          'late@example.com', created_ms => (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000))::jsonb);
SELECT allowed, used, remaining, reason FROM clerk_rate_limit_check('user_not_in_clerk');
SELECT count(*) AS pending_left FROM clerk.pending_usage;
-- Clerk unreachable: reason clerk_unreachable, under both policies.
SELECT set_config('clerk_sync.api_url', 'http://127.0.0.1:1/v1', false), set_config('clerk_sync.max_retries', '0', false);
SELECT allowed, used, reason FROM clerk_rate_limit_consume('user_while_down');
RESET clerk_sync.unknown_user_policy;
SELECT allowed, used, reason FROM clerk_rate_limit_consume('user_while_down');
SELECT test.scenario(''), set_config('clerk_sync.max_retries', '5', false);
-- With fetching off, an unknown user is simply unknown.
SET clerk_sync.fetch_missing_users = off;
SELECT allowed, reason FROM test.unknown, clerk_rate_limit_consume('user_not_fetched');
RESET clerk_sync.fetch_missing_users;

-- A user whose rate-limit row went missing gets it back, and the call is limited as usual.
DELETE FROM clerk.rate_limits WHERE user_id = 'rl_ent';
SELECT allowed, used, daily_limit, tier FROM clerk_rate_limit_consume('rl_ent', 7);
SELECT message_count FROM clerk.rate_limits WHERE user_id = 'rl_ent';

-- The administrator's reset.
SELECT allowed, used, remaining FROM clerk_rate_limit_reset('rl_pro');

-- Bad input: 22023, and nothing changes.
SELECT test.try($$SELECT allowed FROM clerk_rate_limit_consume(NULL)$$) AS null_id,
       test.try($$SELECT allowed FROM clerk_rate_limit_consume('')$$) AS empty_id;
SELECT test.try($$SELECT allowed FROM clerk_rate_limit_consume('rl_pro', 0)$$) AS zero_cost,
       test.try($$SELECT allowed FROM clerk_rate_limit_consume('rl_pro', -1)$$) AS negative_cost;
SELECT test.try($$SELECT allowed FROM clerk_rate_limit_consume('rl_pro', NULL)$$) AS null_cost,
       test.try($$SELECT allowed FROM clerk_rate_limit_consume('rl_pro', 1001)$$) AS cost_above_every_limit;
SELECT test.try($$SELECT allowed FROM clerk_rate_limit_check('')$$) AS check_empty_id;
SELECT message_count FROM clerk.rate_limits WHERE user_id = 'rl_pro';

SELECT count(*) AS copies_out_of_date
  FROM clerk.users u JOIN clerk.tiers t ON t.name = u.tier JOIN clerk.rate_limits r ON r.user_id = u.id
 WHERE r.tier <> u.tier OR r.daily_limit IS DISTINCT FROM t.daily_limit;

-- Privileges: an application role granted EXECUTE on consume/check needs nothing else.
CREATE ROLE regress_app LOGIN;
GRANT EXECUTE ON FUNCTION clerk_rate_limit_consume(text, int), clerk_rate_limit_check(text) TO regress_app;
GRANT USAGE ON SCHEMA test TO regress_app;
GRANT EXECUTE ON FUNCTION test.try(text) TO regress_app;
SET ROLE regress_app;
SELECT allowed, used FROM clerk_rate_limit_consume('rl_pro');
SELECT test.try($$SELECT allowed FROM clerk_rate_limit_reset('rl_pro')$$) AS reset_denied;
SELECT test.try('SET clerk_sync.unknown_user_policy = allow_free') AS widen_policy_denied;
SELECT test.try($$SELECT count(*) FROM clerk.rate_limits$$) AS read_denied;
RESET ROLE;
DROP OWNED BY regress_app;
DROP ROLE regress_app;
RESET client_min_messages;
