// clerk_apply_event end to end, with clients nobody here wrote: the official `svix` package signs
// each delivery, the `pg` package sends it exactly as an edge function would:
//   SELECT clerk_apply_event($1::text, $2::jsonb)  -- the raw body, the request headers
// Connection settings come from PGHOST/PGPORT/PGUSER/PGDATABASE, secrets from CLERK_TEST_SECRET(_2)
// (see run.sh). Every test uses its own user ids and svix-ids, so tests are independent.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { rand, newUserId, newMsgId, clerkUser, clerkEvent, svixHeaders } from './clerk.mjs';

const SECRET = process.env.CLERK_TEST_SECRET;
const SECRET_2 = process.env.CLERK_TEST_SECRET_2;
assert.ok(SECRET && SECRET_2, 'CLERK_TEST_SECRET and CLERK_TEST_SECRET_2 must be set (run.sh does)');

const pool = new pg.Pool({ max: 8 });
after(() => pool.end());

// ---- Clerk-shaped payloads (see the user.* examples in Clerk's webhook OpenAPI spec) ----------

// Signs a body with svix and returns the headers an edge function receives with it.
const signedHeaders = (body, { secret = SECRET, ...opts } = {}) => svixHeaders(secret, body, opts);

// One delivery, as the edge function sends it. Resolves to the outcome text.
async function deliver(body, headers, client = pool) {
    const { rows } = await client.query('SELECT clerk_apply_event($1::text, $2::jsonb) AS outcome', [body, headers]);
    return rows[0].outcome;
}

// Signs and delivers in one go; returns { outcome, msgId }.
async function send(body, opts = {}) {
    const headers = signedHeaders(body, opts);
    return { outcome: await deliver(body, headers), msgId: headers['svix-id'] };
}

// ---- Table reads ---------------------------------------------------------------------------------

const one = async (sql, params) => (await pool.query(sql, params)).rows[0];
const userRow = (id) => one('SELECT * FROM clerk.users WHERE id = $1', [id]);
const rateLimit = (id) => one('SELECT * FROM clerk.rate_limits WHERE user_id = $1', [id]);
const tombstone = (id) => one('SELECT * FROM clerk.deleted_users WHERE id = $1', [id]);
const inboxRow = (msgId) => one('SELECT * FROM clerk.webhook_events WHERE svix_id = $1', [msgId]);
const inboxCount = async (userId) =>
    Number((await one('SELECT count(*) AS n FROM clerk.webhook_events WHERE user_id = $1', [userId])).n);

// Everything stored about one user, for "nothing changed" comparisons.
async function snapshot(userId) {
    return {
        user: await userRow(userId), limit: await rateLimit(userId), tomb: await tombstone(userId),
        inbox: (await pool.query('SELECT * FROM clerk.webhook_events WHERE user_id = $1 ORDER BY svix_id', [userId])).rows,
    };
}

// Asserts that a delivery was refused with the given SQLSTATE and left no trace.
async function assertRefused(body, headers, code, userId) {
    await assert.rejects(deliver(body, headers), (err) => {
        assert.equal(err.code, code, `expected SQLSTATE ${code}, got ${err.code}: ${err.message}`);
        return true;
    });
    assert.equal(await inboxRow(headers['svix-id'] ?? headers['webhook-id']), undefined, 'no inbox row');
    if (userId) {
        assert.equal(await userRow(userId), undefined, 'no user row');
        assert.equal(await rateLimit(userId), undefined, 'no rate-limit row');
    }
}

// ---- Tests ---------------------------------------------------------------------------------------

test('user.created is applied: primary email, tier from public_metadata, rate-limit row', async () => {
    const id = newUserId();
    const t = Date.now() - 60000;
    const eventAt = Date.now();
    const body = clerkEvent('user.created',
        clerkUser({ id, email: 'ada@example.com', createdAt: t, metadata: { tier: 'PRO', plan_since: '2025-01-01' } }),
        eventAt);
    const { outcome, msgId } = await send(body);
    assert.equal(outcome, 'applied');

    const u = await userRow(id);
    assert.equal(u.email, 'ada@example.com', 'the primary address, not the first one');
    assert.equal(u.first_name, 'Ada');
    assert.equal(u.last_name, 'Lovelace');
    assert.equal(u.image_url, 'https://img.clerk.com/preview.png');
    assert.equal(u.tier, 'PRO');
    assert.deepEqual(u.public_metadata, { tier: 'PRO', plan_since: '2025-01-01' });
    assert.equal(u.raw.id, id);
    assert.equal(u.clerk_created_at.getTime(), t);
    assert.equal(u.clerk_updated_at.getTime(), t);

    const rl = await rateLimit(id);
    assert.ok(rl, 'rate-limit row written with the user');
    assert.equal(rl.message_count, 0);

    const ev = await inboxRow(msgId);
    assert.equal(ev.outcome, 'applied');
    assert.equal(ev.event_type, 'user.created');
    assert.equal(ev.user_id, id);
    assert.equal(ev.event_at.getTime(), eventAt);
    assert.equal(ev.payload, body, 'the body is kept byte for byte');
    assert.equal(await tombstone(id), undefined);
});

test('a resent delivery (same svix-id) is a duplicate and changes nothing', async () => {
    const id = newUserId();
    const t = Date.now() - 60000;
    const body = clerkEvent('user.created', clerkUser({ id, email: 'dup@example.com', createdAt: t, metadata: { tier: 'PRO' } }));
    const headers = signedHeaders(body);
    assert.equal(await deliver(body, headers), 'applied');
    const before = await snapshot(id);

    // The identical request again, then a Svix retry: same svix-id and body, signed at a later time.
    assert.equal(await deliver(body, headers), 'duplicate');
    const retry = signedHeaders(body, { id: headers['svix-id'], at: new Date(Date.now() + 2000) });
    assert.notEqual(retry['svix-signature'], headers['svix-signature']);
    assert.equal(await deliver(body, retry), 'duplicate');

    assert.deepEqual(await snapshot(id), before);
    assert.equal(await inboxCount(id), 1);
});

test('out of order user.updated: the newer applies, the older one is stale', async () => {
    const id = newUserId();
    const t = Date.now() - 60000;
    const user = (updatedAt, firstName, tier) =>
        clerkUser({ id, email: `${firstName.toLowerCase()}@example.com`, createdAt: t, updatedAt, firstName, metadata: { tier } });
    assert.equal((await send(clerkEvent('user.created', user(t, 'Created', 'FREE')))).outcome, 'applied');
    assert.equal((await send(clerkEvent('user.updated', user(t + 2000, 'Newer', 'MAXX')))).outcome, 'applied');

    const older = await send(clerkEvent('user.updated', user(t + 1000, 'Older', 'PRO')));
    assert.equal(older.outcome, 'stale');
    assert.equal((await inboxRow(older.msgId)).outcome, 'stale', 'recorded, so Svix need not retry it');

    const u = await userRow(id);
    assert.equal(u.first_name, 'Newer');
    assert.equal(u.email, 'newer@example.com');
    assert.equal(u.tier, 'MAXX');
    assert.equal(u.clerk_updated_at.getTime(), t + 2000);
    assert.ok(await rateLimit(id));
});

test('user.deleted removes user and rate limit, keeps a tombstone; a late update stays stale', async () => {
    const id = newUserId();
    const t = Date.now() - 60000;
    const user = (updatedAt, firstName) => clerkUser({ id, email: 'gone@example.com', createdAt: t, updatedAt, firstName });
    assert.equal((await send(clerkEvent('user.created', user(t, 'Here')))).outcome, 'applied');

    const deletedAt = t + 5000;
    const del = await send(clerkEvent('user.deleted', { object: 'user', id, deleted: true, external_id: null }, deletedAt));
    assert.equal(del.outcome, 'applied');
    assert.equal(await userRow(id), undefined);
    assert.equal(await rateLimit(id), undefined);
    const tomb = await tombstone(id);
    assert.ok(tomb, 'tombstone written');
    assert.equal(tomb.deleted_at.getTime(), deletedAt);

    // An update made before the deletion, delivered after it, must not bring the user back.
    const late = await send(clerkEvent('user.updated', user(t + 3000, 'Zombie'), t + 3000));
    assert.equal(late.outcome, 'stale');
    assert.equal(await userRow(id), undefined);
    assert.equal(await rateLimit(id), undefined);
    assert.ok(await tombstone(id));
});

test('an event type clerk_sync does not handle is ignored (and answered, so Svix stops retrying)', async () => {
    const userId = newUserId();
    const body = clerkEvent('session.created', {
        object: 'session', id: `sess_2${rand(13)}`, user_id: userId, client_id: `client_2${rand(13)}`,
        status: 'active', last_active_at: Date.now(), expire_at: Date.now() + 604800000,
        abandon_at: Date.now() + 2592000000, created_at: Date.now(), updated_at: Date.now(),
    });
    const { outcome, msgId } = await send(body);
    assert.equal(outcome, 'ignored');
    const ev = await inboxRow(msgId);
    assert.equal(ev.outcome, 'ignored');
    assert.equal(ev.event_type, 'session.created');
    assert.equal(await userRow(userId), undefined);
});

test('header names in any case, and the Standard Webhooks names, are accepted', async () => {
    // Mixed case, as some runtimes hand headers over.
    const id1 = newUserId();
    const body1 = clerkEvent('user.created', clerkUser({ id: id1, email: 'case@example.com', createdAt: Date.now() }));
    const h = signedHeaders(body1);
    const mixed = { 'Svix-Id': h['svix-id'], 'SVIX-TIMESTAMP': h['svix-timestamp'], 'Svix-Signature': h['svix-signature'] };
    assert.equal(await deliver(body1, mixed), 'applied');
    assert.equal((await userRow(id1)).email, 'case@example.com');
    assert.equal((await inboxRow(h['svix-id'])).outcome, 'applied');

    // webhook-id / webhook-timestamp / webhook-signature: the same scheme under other names.
    const id2 = newUserId();
    const body2 = clerkEvent('user.created', clerkUser({ id: id2, email: 'std@example.com', createdAt: Date.now() }));
    const s = signedHeaders(body2);
    const standard = { 'webhook-id': s['svix-id'], 'webhook-timestamp': s['svix-timestamp'], 'webhook-signature': s['svix-signature'] };
    assert.equal(await deliver(body2, standard), 'applied');
    assert.equal((await userRow(id2)).email, 'std@example.com');
    assert.equal((await inboxRow(s['svix-id'])).outcome, 'applied');
});

test('rotation: a body signed with the second configured secret is accepted, an unknown one is not', async () => {
    const id = newUserId();
    const body = clerkEvent('user.created', clerkUser({ id, email: 'rot@example.com', createdAt: Date.now() }));
    assert.equal((await send(body, { secret: SECRET_2 })).outcome, 'applied');
    assert.equal((await userRow(id)).email, 'rot@example.com');

    const other = newUserId();
    const otherBody = clerkEvent('user.created', clerkUser({ id: other, email: 'x@example.com', createdAt: Date.now() }));
    const unknownSecret = `whsec_${randomBytes(24).toString('base64')}`;
    await assertRefused(otherBody, signedHeaders(otherBody, { secret: unknownSecret }), '28000', other);
});

test('a body changed by one byte after signing is refused with 28000', async () => {
    const id = newUserId();
    const body = clerkEvent('user.created', clerkUser({ id, email: 'eve@example.com', createdAt: Date.now(), metadata: { tier: 'FREE' } }));
    const headers = signedHeaders(body);
    const i = body.indexOf('"tier":"FREE"') + '"tier":"'.length;
    const tampered = body.slice(0, i) + 'P' + body.slice(i + 1);   // FREE -> PREE
    assert.equal(tampered.length, body.length);
    await assertRefused(tampered, headers, '28000', id);
});

test('a body re-serialised after signing is refused with 28000', async () => {
    // Defect 4 of the old system: it verified JSON.stringify(await req.json()) instead of the raw
    // bytes. The signature covers the raw body; any re-serialisation must fail verification.
    const id = newUserId();
    const body = clerkEvent('user.created', clerkUser({ id, email: 'reser@example.com', createdAt: Date.now() }));
    const headers = signedHeaders(body);
    const reserialised = JSON.stringify(JSON.parse(body), null, 2);
    assert.notEqual(reserialised, body);
    await assertRefused(reserialised, headers, '28000', id);
});

test('a delivery signed 10 minutes ago is refused with 28000', async () => {
    const id = newUserId();
    const body = clerkEvent('user.created', clerkUser({ id, email: 'late@example.com', createdAt: Date.now() }));
    await assertRefused(body, signedHeaders(body, { at: new Date(Date.now() - 10 * 60 * 1000) }), '28000', id);
});

test('correctly signed bodies that are not JSON (22P02) or not a Clerk event (22023)', async () => {
    const notJson = 'user.created: not json {';
    await assertRefused(notJson, signedHeaders(notJson), '22P02');
    const notEvent = JSON.stringify({ hello: 'world', items: [1, 2, 3] });
    await assertRefused(notEvent, signedHeaders(notEvent), '22023');
});

test('a ~1 MB delivery (large public_metadata) is applied', async () => {
    const id = newUserId();
    // 1000 members of ~1 KB each.
    const metadata = { tier: 'ENTERPRISE' };
    for (let i = 0; i < 1000; i++) metadata[`note_${i}`] = `${i}:`.padEnd(1000, 'x');
    const body = clerkEvent('user.created', clerkUser({ id, email: 'big@example.com', createdAt: Date.now(), metadata }));
    assert.ok(body.length > 1_000_000, `body is ${body.length} bytes`);
    const { outcome, msgId } = await send(body);
    assert.equal(outcome, 'applied');
    const u = await userRow(id);
    assert.equal(u.tier, 'ENTERPRISE');
    assert.deepEqual(u.public_metadata, metadata);
    assert.ok(await rateLimit(id));
    assert.equal((await inboxRow(msgId)).payload, body);
});

test('concurrency: one delivery on 8 connections at once is applied exactly once', async () => {
    const id = newUserId();
    const body = clerkEvent('user.created', clerkUser({ id, email: 'race@example.com', createdAt: Date.now(), metadata: { tier: 'PRO' } }));
    const headers = signedHeaders(body);
    const clients = Array.from({ length: 8 }, () => new pg.Client());
    await Promise.all(clients.map((c) => c.connect()));
    try {
        const outcomes = await Promise.all(clients.map((c) => deliver(body, headers, c)));
        assert.deepEqual(outcomes.sort(), ['applied', ...Array(7).fill('duplicate')]);
    } finally {
        await Promise.all(clients.map((c) => c.end()));
    }
    assert.equal((await userRow(id)).tier, 'PRO');
    assert.ok(await rateLimit(id));
    assert.equal(await inboxCount(id), 1);
});

test('concurrency: shuffled updates of one user delivered at once end at the newest', async () => {
    const id = newUserId();
    const t = Date.now() - 600000;
    const version = (n) => clerkUser({ id, email: `v${n}@example.com`, createdAt: t, updatedAt: t + n * 1000,
                                       firstName: `v${n}`, metadata: { tier: n % 2 ? 'PRO' : 'MAXX', version: n } });
    assert.equal((await send(clerkEvent('user.created', version(0)))).outcome, 'applied');

    const N = 40;
    const deliveries = Array.from({ length: N }, (_, k) => {
        const body = clerkEvent('user.updated', version(k + 1), t + (k + 1) * 1000);
        return { n: k + 1, body, headers: signedHeaders(body) };
    });
    for (let i = deliveries.length - 1; i > 0; i--) {            // Fisher-Yates shuffle
        const j = Math.floor(Math.random() * (i + 1));
        [deliveries[i], deliveries[j]] = [deliveries[j], deliveries[i]];
    }
    const outcomes = await Promise.all(deliveries.map((d) => deliver(d.body, d.headers)));  // pool of 8

    for (const o of outcomes) assert.ok(o === 'applied' || o === 'stale', `unexpected outcome ${o}`);
    assert.equal(outcomes[deliveries.findIndex((d) => d.n === N)], 'applied', 'the newest always applies');
    const u = await userRow(id);
    assert.equal(u.first_name, `v${N}`);
    assert.equal(u.email, `v${N}@example.com`);
    assert.equal(u.tier, N % 2 ? 'PRO' : 'MAXX');
    assert.equal(u.public_metadata.version, N);
    assert.equal(u.clerk_updated_at.getTime(), t + N * 1000);
    assert.ok(await rateLimit(id));
    assert.equal(await inboxCount(id), N + 1);
});
