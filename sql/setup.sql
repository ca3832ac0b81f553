-- Test helpers: signing with pgcrypto's HMAC (an implementation independent of the extension's),
-- and builders of realistic Clerk users and events.
CREATE EXTENSION pgcrypto;
CREATE SCHEMA test;

-- The secrets in test/regress.conf.
CREATE FUNCTION test.secret(n int DEFAULT 1) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT (ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_plJ3nmyCDGBKInavdOK15jsl'])[n] $$;

-- "v1,<base64 HMAC-SHA256 of id.ts.body>" under a whsec_ secret.
CREATE FUNCTION test.sign(body text, msg_id text, ts bigint, secret text DEFAULT test.secret())
RETURNS text LANGUAGE sql IMMUTABLE
AS $$
    SELECT 'v1,' || encode(hmac(convert_to(msg_id || '.' || ts || '.' || body, 'UTF8'),
                                decode(substr(secret, 7), 'base64'), 'sha256'), 'base64')
$$;

-- Request headers as an edge function forwards them.
CREATE FUNCTION test.headers(body text, msg_id text, ts bigint DEFAULT extract(epoch FROM now())::bigint,
                             secret text DEFAULT test.secret())
RETURNS jsonb LANGUAGE sql
AS $$
    SELECT jsonb_build_object('svix-id', msg_id, 'svix-timestamp', ts::text,
                              'svix-signature', test.sign(body, msg_id, ts, secret),
                              'content-type', 'application/json')
$$;

-- Delivers a body signed now under a fresh (or given) message id.
CREATE SEQUENCE test.msg_seq;
CREATE FUNCTION test.deliver(body text, msg_id text DEFAULT NULL)
RETURNS text LANGUAGE sql
AS $$
    SELECT clerk_apply_event(body, test.headers(body, coalesce(msg_id, 'msg_' || nextval('test.msg_seq'))))
$$;

-- Runs a statement and returns its result, or its error as "ERROR <sqlstate>: <message> (<detail>)".
-- Inside an exception block, so whatever a failed statement did is rolled back.
CREATE FUNCTION test.try(statement text) RETURNS text LANGUAGE plpgsql
AS $$
DECLARE
    result text;
    detail text;
BEGIN
    EXECUTE statement INTO result;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM || CASE WHEN detail <> '' THEN ' (' || detail || ')' ELSE '' END;
END
$$;

-- clerk_apply_event with the error, if any, as text.
CREATE FUNCTION test.try_apply(body text, headers jsonb) RETURNS text LANGUAGE sql
AS $$ SELECT test.try(format('SELECT clerk_apply_event(%L, %L)', body, headers)) $$;

-- test.deliver with the error, if any, as text.
CREATE FUNCTION test.try_deliver(body text) RETURNS text LANGUAGE sql
AS $$ SELECT test.try(format('SELECT test.deliver(%L)', body)) $$;

-- A Clerk User object shaped like the Backend API's, with the primary email NOT first.
CREATE FUNCTION test.user_json(id text, updated_ms bigint, email text DEFAULT NULL,
                               first_name text DEFAULT 'Ada', metadata jsonb DEFAULT '{}',
                               created_ms bigint DEFAULT 1700000000000)
RETURNS jsonb LANGUAGE sql
AS $$
    SELECT jsonb_build_object(
        'object', 'user', 'id', id, 'external_id', NULL,
        'primary_email_address_id', CASE WHEN email IS NULL THEN NULL ELSE 'idn_primary_' || id END,
        'primary_phone_number_id', NULL, 'username', NULL,
        'first_name', first_name, 'last_name', 'Lovelace',
        'image_url', 'https://img.clerk.com/' || id, 'has_image', true,
        'public_metadata', metadata, 'private_metadata', '{}'::jsonb, 'unsafe_metadata', '{}'::jsonb,
        'email_addresses', CASE WHEN email IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(
            jsonb_build_object('id', 'idn_other_' || id, 'object', 'email_address',
                               'email_address', 'old-' || email, 'linked_to', '[]'::jsonb,
                               'verification', jsonb_build_object('status', 'verified')),
            jsonb_build_object('id', 'idn_primary_' || id, 'object', 'email_address',
                               'email_address', email, 'linked_to', '[]'::jsonb,
                               'verification', jsonb_build_object('status', 'verified'))) END,
        'phone_numbers', '[]'::jsonb, 'web3_wallets', '[]'::jsonb, 'external_accounts', '[]'::jsonb,
        'password_enabled', true, 'two_factor_enabled', false, 'banned', false, 'locked', false,
        'last_sign_in_at', updated_ms, 'created_at', created_ms, 'updated_at', updated_ms)
$$;

-- A webhook envelope, as text (what Clerk signs and sends).
CREATE FUNCTION test.event(type text, data jsonb, ts_ms bigint DEFAULT 1700000000000)
RETURNS text LANGUAGE sql
AS $$
    SELECT jsonb_build_object('data', data, 'object', 'event', 'type', type, 'timestamp', ts_ms,
                              'instance_id', 'ins_test',
                              'event_attributes', jsonb_build_object('http_request',
                                  jsonb_build_object('client_ip', '192.0.2.1', 'user_agent', 'test')))::text
$$;

-- What is stored for one user, compactly.
CREATE FUNCTION test.stored(p_id text)
RETURNS TABLE (id text, email text, first_name text, tier text, updated bigint, rate_limit boolean, tombstone boolean)
LANGUAGE sql
AS $$
    SELECT p_id, u.email, u.first_name, u.tier,
           (extract(epoch FROM u.clerk_updated_at) * 1000)::bigint,
           EXISTS (SELECT FROM clerk.rate_limits r WHERE r.user_id = p_id),
           EXISTS (SELECT FROM clerk.deleted_users d WHERE d.id = p_id)
      FROM (SELECT 1) AS one LEFT JOIN clerk.users u ON u.id = p_id
$$;

SELECT extname, extversion FROM pg_extension WHERE extname = 'clerk_sync';
SELECT name, daily_limit FROM clerk.tiers ORDER BY daily_limit NULLS LAST;
SELECT name, setting FROM pg_settings WHERE name LIKE 'clerk_sync.%' ORDER BY name;
