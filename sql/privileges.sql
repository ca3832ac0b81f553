-- The privilege model: a role granted only EXECUTE on clerk_apply_event(text, jsonb) can apply
-- signed events, but can read neither the clerk.* tables nor any secret, and can use no other
-- entry point.
CREATE ROLE regress_forwarder LOGIN;
GRANT EXECUTE ON FUNCTION clerk_apply_event(text, jsonb) TO regress_forwarder;
CREATE ROLE regress_nobody LOGIN;
-- the test helpers (signing) stay usable by both
GRANT USAGE ON SCHEMA test TO regress_forwarder, regress_nobody;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA test TO regress_forwarder, regress_nobody;
GRANT USAGE ON SEQUENCE test.msg_seq TO regress_forwarder, regress_nobody;
GRANT EXECUTE ON FUNCTION hmac(bytea, bytea, text), gen_random_bytes(int) TO regress_forwarder, regress_nobody;

-- What PUBLIC may execute: only the pure verification function.
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clerk_sync'
 ORDER BY 1::text COLLATE "C";

SET ROLE regress_forwarder;
SELECT test.deliver(test.event('user.created', test.user_json('user_priv', 1700000000000, 'p@example.com')));
SELECT test.try('SELECT count(*) FROM clerk.users') AS read_users,
       test.try('SELECT count(*) FROM clerk.webhook_events') AS read_inbox;
SELECT test.try('SELECT clerk_apply_event(''{}''::jsonb)') AS trusted_path,
       test.try($$SELECT clerk_sync_user('user_x', 'x@example.com')$$) AS manual_sync,
       test.try($$SELECT clerk._upsert_users('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')$$) AS internal;
-- no secret is readable: SHOW, current_setting, pg_settings, pg_file_settings
SELECT test.try('SHOW clerk_sync.webhook_secret') AS show_secret;
SELECT test.try($$SELECT current_setting('clerk_sync.webhook_secret')$$) AS current_setting;
SELECT count(*) AS secret_rows_in_pg_settings FROM pg_settings WHERE name LIKE '%secret%';
SELECT test.try('SELECT count(*) FROM pg_file_settings') AS file_settings;
-- ... nor through an error message
SELECT position('MfKQ9r8G' IN test.try_apply('{}', test.headers('{}', 'msg_x', secret => test.secret()))) AS secret_in_error;
RESET ROLE;

SET ROLE regress_nobody;
SELECT test.try($$SELECT test.deliver('{}')$$) AS apply_without_grant;
SELECT clerk_webhook_verify('{}', test.headers('{}', 'msg_1', 1700000000), test.secret(), to_timestamp(1700000000)) AS verify_is_public;
RESET ROLE;

SELECT * FROM test.stored('user_priv');

-- The settings that are not secret are visible as usual; the secret is hidden from SHOW ALL.
SELECT count(*) AS secret_in_show_all FROM (SELECT * FROM pg_show_all_settings()) s WHERE name = 'clerk_sync.webhook_secret';

DROP OWNED BY regress_forwarder, regress_nobody;
DROP ROLE regress_forwarder, regress_nobody;
