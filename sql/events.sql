-- Event semantics: what each Clerk event does to clerk.users / clerk.rate_limits / the inbox.

-- user.created: the PRIMARY email (the second entry here), tier from public_metadata, a rate-limit row.
SELECT test.deliver(test.event('user.created', test.user_json('user_a', 1700000000000, 'a@example.com',
                                                             metadata => '{"tier": "PRO"}')), 'msg_a1');
SELECT * FROM test.stored('user_a');
SELECT raw->>'id' AS raw_id, jsonb_array_length(raw->'email_addresses') AS addresses, public_metadata,
       clerk_created_at = to_timestamp(1700000000) AS created_at_ok
  FROM clerk.users WHERE id = 'user_a';
SELECT user_id, message_count FROM clerk.rate_limits WHERE user_id = 'user_a';

-- The same delivery again (Svix retries with the same svix-id): duplicate, nothing changes.
SELECT test.deliver(test.event('user.updated', test.user_json('user_a', 1700000009000, 'changed@example.com')), 'msg_a1');
SELECT * FROM test.stored('user_a');
SELECT svix_id, event_type, outcome, user_id, event_at = to_timestamp(1700000000) AS event_at_ok
  FROM clerk.webhook_events WHERE user_id = 'user_a' ORDER BY svix_id;

-- user.updated without a tier keeps the stored tier; names and email follow Clerk.
SELECT test.deliver(test.event('user.updated', test.user_json('user_a', 1700000001000, 'a2@example.com', 'Ada2')));
SELECT * FROM test.stored('user_a');
-- An older update delivered late is stale and changes nothing.
SELECT test.deliver(test.event('user.updated', test.user_json('user_a', 1700000000500, 'old@example.com', 'Old')));
SELECT * FROM test.stored('user_a');
-- A tie (same updated_at) applies: of two events stamped alike, the later delivery is not lost.
SELECT test.deliver(test.event('user.updated', test.user_json('user_a', 1700000001000, 'a2@example.com', 'Ada3')));
SELECT * FROM test.stored('user_a');
-- An explicit tier replaces the stored one.
SELECT test.deliver(test.event('user.updated', test.user_json('user_a', 1700000002000, 'a2@example.com', 'Ada3', '{"tier": "MAXX"}')));
SELECT * FROM test.stored('user_a');

-- Unknown tier: a WARNING, FREE, and the event still applies. Non-string tiers likewise.
SELECT test.deliver(test.event('user.created', test.user_json('user_b', 1700000000000, 'b@example.com', metadata => '{"tier": "GOLD"}')));
SELECT test.deliver(test.event('user.created', test.user_json('user_c', 1700000000000, 'c@example.com', metadata => '{"tier": 7}')));
SELECT * FROM test.stored('user_b') UNION ALL SELECT * FROM test.stored('user_c');

-- clerk_sync.tier_key names the metadata member.
SET clerk_sync.tier_key = 'plan';
SELECT test.deliver(test.event('user.created', test.user_json('user_d', 1700000000000, 'd@example.com', metadata => '{"plan": "ENTERPRISE", "tier": "PRO"}')));
RESET clerk_sync.tier_key;
SELECT * FROM test.stored('user_d');

-- A user with no email is skipped (recorded, not an error), unless clerk_sync.require_email is off.
SELECT test.deliver(test.event('user.created', test.user_json('user_phone', 1700000000000)), 'msg_phone1');
SELECT * FROM test.stored('user_phone');
SELECT outcome, user_id, detail FROM clerk.webhook_events WHERE svix_id = 'msg_phone1';
SET clerk_sync.require_email = off;
SELECT test.deliver(test.event('user.created', test.user_json('user_phone', 1700000000000)));
RESET clerk_sync.require_email;
SELECT * FROM test.stored('user_phone');

-- Shuffled updates of one user converge to the newest, whatever the delivery order.
SELECT string_agg(test.deliver(test.event('user.updated', test.user_json('user_e', 1700000000000 + n * 1000, 'e' || n || '@example.com', 'E' || n))), ',' ORDER BY ord) AS outcomes
  FROM unnest(ARRAY[3, 1, 5, 2, 4]) WITH ORDINALITY AS s(n, ord);
SELECT * FROM test.stored('user_e');

-- user.deleted: the user and its rate-limit row go (cascade), a tombstone stays.
-- The deletion's time is the event's timestamp (seconds here, as in Clerk's spec example).
SELECT test.deliver(test.event('user.deleted', '{"object": "user", "id": "user_e", "deleted": true}', 1700000010));
SELECT * FROM test.stored('user_e');
SELECT id, deleted_at = to_timestamp(1700000010) AS deleted_at_ok FROM clerk.deleted_users;
-- A late update (made before the deletion) cannot bring the user back.
SELECT test.deliver(test.event('user.updated', test.user_json('user_e', 1700000009000, 'e@example.com')), 'msg_late');
SELECT * FROM test.stored('user_e');
SELECT outcome, detail FROM clerk.webhook_events WHERE svix_id = 'msg_late';
-- Deleting again is harmless; deleting an unknown user leaves a tombstone for a late creation.
SELECT test.deliver(test.event('user.deleted', '{"object": "user", "id": "user_e", "deleted": true}', 1700000011000));
SELECT test.deliver(test.event('user.deleted', '{"object": "user", "id": "user_never_seen", "deleted": true}', 1700000011000));
SELECT test.deliver(test.event('user.created', test.user_json('user_never_seen', 1700000005000, 'n@example.com', created_ms => 1700000005000)));
SELECT * FROM test.stored('user_never_seen');
-- A genuine re-creation (created after the deletion) does come back, and the tombstone goes.
SELECT test.deliver(test.event('user.created', test.user_json('user_e', 1700000020000, 'e-again@example.com', created_ms => 1700000020000)));
SELECT * FROM test.stored('user_e');
-- A deletion older than the re-creation is stale.
SELECT test.deliver(test.event('user.deleted', '{"object": "user", "id": "user_e", "deleted": true}', 1700000015000));
SELECT * FROM test.stored('user_e');
-- user.deleted without an id: skipped (nothing to delete; an error would only be retried forever).
SELECT test.deliver(test.event('user.deleted', '{"object": "user", "deleted": true}'), 'msg_del_noid');
SELECT outcome, detail FROM clerk.webhook_events WHERE svix_id = 'msg_del_noid';

-- Other event types are acknowledged as ignored, so Svix stops retrying.
SELECT test.deliver(test.event('session.created', '{"id": "sess_1", "user_id": "user_a"}'), 'msg_session');
SELECT test.deliver(test.event('organization.created', '{"id": "org_1"}'));
SELECT svix_id, event_type, outcome FROM clerk.webhook_events WHERE svix_id = 'msg_session';

-- Application tables can reference clerk.users with ON DELETE CASCADE.
CREATE TABLE test.messages (id serial, user_id text NOT NULL REFERENCES clerk.users (id) ON DELETE CASCADE);
INSERT INTO test.messages (user_id) VALUES ('user_a'), ('user_a');
SELECT test.deliver(test.event('user.deleted', '{"object": "user", "id": "user_a", "deleted": true}', 1700000030000));
SELECT count(*) AS messages_left FROM test.messages;

-- The trusted path: no signature, no duplicate check, the same rules.
SELECT clerk_apply_event(test.event('user.created', test.user_json('user_t', 1700000000000, 't@example.com'))::jsonb);
SELECT clerk_apply_event(test.event('user.updated', test.user_json('user_t', 1699999999000, 'older@example.com'))::jsonb);
SELECT * FROM test.stored('user_t');
SELECT svix_id LIKE 'manual_%' AS generated_id, outcome FROM clerk.webhook_events WHERE user_id = 'user_t' ORDER BY outcome;
SELECT test.try($$SELECT clerk_apply_event('{"type": "user.created"}'::jsonb)$$) AS not_an_event;
SELECT test.try($$SELECT clerk_apply_event(NULL::jsonb)$$) AS null_event;

-- clerk_sync_user: the manual sync. Keeps the tier unless given; never revives a deleted user.
SELECT clerk_sync_user('user_m', 'm@example.com', 'Manual', 'User');
SELECT * FROM test.stored('user_m');
SELECT clerk_sync_user('user_m', 'm2@example.com', tier => 'PRO');
SELECT clerk_sync_user('user_m', 'm3@example.com');
SELECT * FROM test.stored('user_m');
SELECT raw->>'source' AS source FROM clerk.users WHERE id = 'user_m';
-- a real Clerk event afterwards still applies (the manual sync set no Clerk ordering stamp)
SELECT test.deliver(test.event('user.updated', test.user_json('user_m', 1700000000000, 'm-clerk@example.com')));
SELECT * FROM test.stored('user_m');
SELECT clerk_sync_user('user_e', 'e@example.com');
SELECT clerk_sync_user('user_a', 'a@example.com');
SELECT * FROM test.stored('user_a');
SELECT test.try($$SELECT clerk_sync_user('', 'x@example.com')$$) AS empty_id,
       test.try($$SELECT clerk_sync_user('user_z', NULL)$$) AS null_email,
       test.try($$SELECT clerk_sync_user('user_z', 'z@example.com', tier => 'GOLD')$$) AS unknown_tier;

-- Every user row has its rate-limit row.
SELECT count(*) AS users_without_rate_limit FROM clerk.users u
 WHERE NOT EXISTS (SELECT FROM clerk.rate_limits r WHERE r.user_id = u.id);
