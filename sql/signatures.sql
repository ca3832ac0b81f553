-- Svix signature verification: published known answers, then every way a delivery can be wrong.
-- Nothing rejected may change a table, and the errors carry SQLSTATE 28000 (signature), 22P02 (not
-- JSON), 22023 (not a Clerk event / bad argument), 22004 (NULL argument).

-- Known answers (shared/clerk/svix-known-answers.json), checked at the clock they were made at.
WITH cases(name, secret, id, ts, payload, signature, valid) AS (VALUES
    ('svix-library-sign-test', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
     '1614265330', '{"test": 2432232314}', 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', true),
    ('svix-library-sign-test-last-char-changed', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
     'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', '{"test": 2432232314}',
     'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=', false),
    ('svix-library-multiple-signatures-one-valid', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
     'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', '{"test": 2432232314}',
     'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
     true),
    ('svix-docs-manual-verification', 'whsec_plJ3nmyCDGBKInavdOK15jsl', 'msg_loFOjxBNrRLzqYUf',
     '1731705121', '{"event_type":"ping","data":{"success":true}}',
     'v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=', true))
SELECT name, valid,
       clerk_webhook_verify(payload, jsonb_build_object('svix-id', id, 'svix-timestamp', ts, 'svix-signature', signature),
                            secret, to_timestamp(ts::bigint)) AS verified,
       -- the same at the real clock: far outside the 5-minute tolerance
       clerk_webhook_verify(payload, jsonb_build_object('svix-id', id, 'svix-timestamp', ts, 'svix-signature', signature),
                            secret) AS verified_now
  FROM cases;

-- pgcrypto's HMAC agrees with the published answer, so the helpers below sign correctly.
SELECT test.sign('{"test": 2432232314}', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330);

-- The tolerance edges (300 s by default): 300 s old or ahead passes, 301 s does not.
SELECT at_offset, clerk_webhook_verify('{}', test.headers('{}', 'msg_edge', 1700000000), test.secret(),
                                       to_timestamp(1700000000 + at_offset)) AS verified
  FROM unnest(ARRAY[-301, -300, 0, 300, 301]) AS at_offset;

-- Header names are case-insensitive, and the Standard Webhooks names work too.
SELECT clerk_webhook_verify('{}', jsonb_build_object('SVIX-ID', 'msg_1', 'Svix-Timestamp', '1700000000',
                                                     'Svix-Signature', test.sign('{}', 'msg_1', 1700000000)),
                            test.secret(), to_timestamp(1700000000)) AS mixed_case,
       clerk_webhook_verify('{}', jsonb_build_object('webhook-id', 'msg_1', 'webhook-timestamp', '1700000000',
                                                     'webhook-signature', test.sign('{}', 'msg_1', 1700000000)),
                            test.secret(), to_timestamp(1700000000)) AS standard_webhooks,
       -- a header given as an array of values (as some frameworks pass repeated headers)
       clerk_webhook_verify('{}', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '1700000000',
                                                     'svix-signature', jsonb_build_array('v1,AAAA', test.sign('{}', 'msg_1', 1700000000))),
                            test.secret(), to_timestamp(1700000000)) AS array_value;

-- Malformed headers verify as false, never crash.
SELECT name, clerk_webhook_verify('{}', headers, test.secret(), to_timestamp(1700000000)) AS verified
  FROM (VALUES
    ('no headers', '{}'::jsonb),
    ('no signature', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '1700000000')),
    ('empty signature', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '1700000000', 'svix-signature', '')),
    ('timestamp not a number', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '17e8', 'svix-signature', test.sign('{}', 'msg_1', 1700000000))),
    ('negative timestamp', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '-1', 'svix-signature', 'v1,x')),
    ('huge timestamp', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', repeat('9', 400), 'svix-signature', 'v1,x')),
    ('signature not base64', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '1700000000', 'svix-signature', 'v1,!!!! v1,@@')),
    ('signature of wrong length', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '1700000000', 'svix-signature', 'v1,' || encode('abc', 'base64'))),
    ('only a v2 signature', jsonb_build_object('svix-id', 'msg_1', 'svix-timestamp', '1700000000', 'svix-signature', replace(test.sign('{}', 'msg_1', 1700000000), 'v1,', 'v2,'))),
    ('id as a number', jsonb_build_object('svix-id', 1, 'svix-timestamp', '1700000000', 'svix-signature', test.sign('{}', '1', 1700000000))),
    ('huge header', jsonb_build_object('svix-id', repeat('x', 1000000), 'svix-timestamp', '1700000000', 'svix-signature', repeat('v1,AAAA ', 100000))),
    ('same header twice, differing', jsonb_build_object('svix-id', 'msg_1', 'SVIX-ID', 'msg_2', 'svix-timestamp', '1700000000', 'svix-signature', test.sign('{}', 'msg_1', 1700000000)))
  ) AS t(name, headers);

-- Bad arguments are errors (22023, 22004), not "false".
SELECT test.try($$SELECT clerk_webhook_verify('{}', '[]', test.secret())$$) AS headers_array,
       test.try($$SELECT clerk_webhook_verify('{}', '"svix-id"', test.secret())$$) AS headers_string;
SELECT test.try($$SELECT clerk_webhook_verify('{}', '{}', 'whsec_not base64!')$$) AS bad_secret,
       test.try($$SELECT clerk_webhook_verify('{}', '{}', '')$$) AS empty_secret;
SELECT test.try($$SELECT clerk_webhook_verify(NULL, '{}', test.secret())$$) AS null_payload,
       test.try($$SELECT clerk_webhook_verify('{}', '{}', test.secret(), NULL)$$) AS null_clock;
SELECT test.try($$SELECT clerk_webhook_verify('{}', (repeat('{"a":', 10000) || '1' || repeat('}', 10000))::jsonb, test.secret())$$) AS deep_headers;

------------------------------------------------------------------------------------------------
-- clerk_apply_event(payload, headers): rejected deliveries raise 28000 and change nothing.
------------------------------------------------------------------------------------------------
CREATE TABLE test.body AS SELECT test.event('user.created', test.user_json('user_sig', 1700000000000, 'sig@example.com')) AS b;
SELECT name, regexp_replace(test.try_apply(body, headers), 'is \d+ s', 'is N s') AS result
  FROM test.body, LATERAL (VALUES
    ('tampered body', replace(b, 'sig@', 'evil@'), test.headers(b, 'msg_sig_1')),
    ('wrong secret', b, test.headers(b, 'msg_sig_2', secret => 'whsec_' || encode(gen_random_bytes(24), 'base64'))),
    ('10 minutes old', b, test.headers(b, 'msg_sig_3', extract(epoch FROM now())::bigint - 600)),
    ('10 minutes ahead', b, test.headers(b, 'msg_sig_4', extract(epoch FROM now())::bigint + 600)),
    ('no headers', b, '{}'),
    ('no signature header', b, test.headers(b, 'msg_sig_5') - 'svix-signature'),
    ('no timestamp header', b, test.headers(b, 'msg_sig_5') - 'svix-timestamp'),
    ('signed for another id', b, test.headers(b, 'msg_sig_5') || '{"svix-id": "msg_other"}'),
    ('re-serialised body (the old app''s bug)', jsonb_pretty(b::jsonb), test.headers(b, 'msg_sig_7')),
    ('headers not an object', b, '[]'),
    ('NULL payload', NULL, test.headers(b, 'msg_sig_6')),
    ('NULL headers', b, NULL)
  ) AS t(name, body, headers)
  ORDER BY name COLLATE "C";
SELECT count(*) AS users, (SELECT count(*) FROM clerk.webhook_events) AS events FROM clerk.users;

-- Signed correctly, but not JSON (22P02) or not a Clerk event (22023): nothing stored.
SELECT name, test.try_deliver(body) AS result
  FROM (VALUES
    ('not json', 'not json at all'),
    ('truncated json', '{"type":"user.created","data":'),
    ('lone surrogate escape', '{"a":"\udc00"}'),
    ('an array', '[1,2,3]'),
    ('no data', '{"type":"user.created"}'),
    ('type not a string', '{"type":42,"data":{}}'),
    ('user without timestamps', '{"type":"user.created","data":{"id":"user_x"}}'),
    ('user with a text timestamp', '{"type":"user.updated","data":{"id":"user_x","created_at":"yesterday","updated_at":1}}'),
    ('user without id', '{"type":"user.updated","data":{"created_at":1,"updated_at":1}}'),
    ('NUL in a name', '{"type":"user.created","data":{"id":"user_nul","first_name":"a\u0000b","created_at":1,"updated_at":1}}'),
    ('100000 nested arrays', repeat('[', 100000) || repeat(']', 100000)),
    ('deeply nested metadata', '{"type":"user.created","data":{"id":"user_deep","created_at":1,"updated_at":1,"public_metadata":' || repeat('{"a":', 5000) || '1' || repeat('}', 5000) || '}}')
  ) AS t(name, body)
  ORDER BY name COLLATE "C";
-- Invalid UTF-8 never reaches the function: PostgreSQL refuses it as text (22021).
SELECT test.try($$SELECT test.deliver(convert_from('\x7b22223aff7d'::bytea, 'UTF8'))$$) AS invalid_utf8;
SELECT count(*) AS users, (SELECT count(*) FROM clerk.webhook_events) AS events FROM clerk.users;

-- The secret is server configuration: no session can change it (55P02).
SELECT test.try($$SET clerk_sync.webhook_secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'$$) AS set_secret;

-- A valid delivery, whitespace and key order as sent (verified over the raw bytes), applies.
\set spaced '{  "type" : "user.created",\n\t"timestamp": 1700000000000 ,"object":"event",\r\n "data": {"updated_at":1700000000000, "created_at":1700000000000, "id":"user_sig", "primary_email_address_id":"idn_1", "email_addresses":[{"email_address":"sig@example.com","id":"idn_1"}]}   }\n'
SELECT test.deliver(:'spaced', 'msg_sig_ok');
SELECT payload = :'spaced' AS payload_kept_byte_for_byte FROM clerk.webhook_events WHERE svix_id = 'msg_sig_ok';

-- Rotation: a delivery signed with the second configured secret is accepted.
SELECT clerk_apply_event(test.event('user.updated', test.user_json('user_sig', 1700000001000, 'sig@example.com')),
                         test.headers(test.event('user.updated', test.user_json('user_sig', 1700000001000, 'sig@example.com')),
                                      'msg_sig_rotated', secret => test.secret(2)));
-- Several signatures, one valid.
SELECT clerk_apply_event(b, jsonb_set(h, '{svix-signature}', to_jsonb('v1,AAAA v2,BBBB ' || (h->>'svix-signature'))))
  FROM (SELECT b, test.headers(b, 'msg_sig_multi') AS h
          FROM test.event('user.updated', test.user_json('user_sig', 1700000002000, 'sig@example.com')) AS b) AS d;

-- A 1 MB event applies.
SELECT test.deliver(test.event('user.updated', test.user_json('user_sig', 1700000003000, 'sig@example.com',
                                                             metadata => jsonb_build_object('blob', repeat('x', 1000000)))));
SELECT outcome, user_id FROM clerk.webhook_events WHERE length(payload) > 1000000;
SELECT * FROM test.stored('user_sig');
