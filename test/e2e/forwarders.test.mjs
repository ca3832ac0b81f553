// The webhook path end to end, over real HTTP, with clients nobody here wrote: the official `svix`
// package signs each delivery, Node's fetch POSTs it to a forwarder from examples/ running as its
// own process — the Node one (node:http + pg) and the Supabase edge function (Deno + Postgres.js) —
// which logs in as clerk_webhook (EXECUTE on clerk_apply_event(text, jsonb), nothing else) and
// answers with the status Svix acts on. The tables are read over a superuser connection.
// Set up by run.sh: PGHOST/PGPORT/PGUSER/PGDATABASE (superuser), CLERK_E2E_SECRET, CLERK_E2E_DATABASE_URL,
// CLERK_E2E_REJECTED_URL (a role pg_hba.conf turns away), CLERK_E2E_PGCTL ("... stop|start"),
// CLERK_E2E_DENO (the Deno binary, empty if none).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { exec, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { newUserId, newMsgId, clerkUser, clerkEvent, deletedUser, svixHeaders, shuffle } from '../node/clerk.mjs';
import { startForwarder, available, TIMEOUT_MS, DENO, EDGE_FUNCTION } from './forwarders.mjs';

const env = process.env;
const SECRET = env.CLERK_E2E_SECRET;
assert.ok(SECRET && env.CLERK_E2E_DATABASE_URL && env.CLERK_E2E_REJECTED_URL && env.CLERK_E2E_PGCTL,
    'run this through test/e2e/run.sh');
const KINDS = ['node', 'deno'];

const pool = new pg.Pool({ max: 4 });
pool.on('error', () => {});   // idle connections die when the test stops the database
const forwarders = {};        // kind -> running forwarder
const sentIds = { node: [], deno: [] };

before(async () => {
    for (const kind of KINDS.filter(available)) forwarders[kind] = await startForwarder(kind, env.CLERK_E2E_DATABASE_URL);
});
after(async () => {
    for (const f of Object.values(forwarders)) await f.stop();
    await pool.end();
});

// ---- HTTP ---------------------------------------------------------------------------------------

// POSTs `body` to the forwarder with `headers`; resolves to { status, json, headers }.
async function post(kind, body, headers = {}, init = {}) {
    const response = await fetch(forwarders[kind].url, {
        method: 'POST', body,
        // what Svix sends besides its own three
        headers: { 'content-type': 'application/json', 'user-agent': 'Svix-Webhooks/1.0 (e2e)', ...headers },
        ...init,
    });
    const text = await response.text();
    let json;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: response.status, json, headers: response.headers };
}

// Signs `body` (as delivery `id`, now unless `at`) and POSTs it; adds { msgId } to post()'s answer.
async function deliver(kind, body, { id = newMsgId(), at, secret = SECRET } = {}) {
    sentIds[kind].push(id);
    return { ...(await post(kind, body, svixHeaders(secret, body, { id, at }))), msgId: id };
}

// ---- Table reads --------------------------------------------------------------------------------

const one = async (sql, params) => (await pool.query(sql, params)).rows[0];
const userRow = (id) => one('SELECT * FROM clerk.users WHERE id = $1', [id]);
const rateLimitCount = async (id) =>
    Number((await one('SELECT count(*) AS n FROM clerk.rate_limits WHERE user_id = $1', [id])).n);
const tombstone = (id) => one('SELECT * FROM clerk.deleted_users WHERE id = $1', [id]);
const inboxRow = (msgId) => one('SELECT * FROM clerk.webhook_events WHERE svix_id = $1', [msgId]);

// Asserts that nothing at all is stored for the delivery and the user.
async function assertNothingStored(msgId, userId) {
    assert.equal(await inboxRow(msgId), undefined, 'no inbox row');
    if (userId) {
        assert.equal(await userRow(userId), undefined, 'no user row');
        assert.equal(await rateLimitCount(userId), 0, 'no rate-limit row');
    }
}

// Versions of one user: version(n) is updated n seconds after creation, named vN.
function versions(id, createdAt = Date.now() - 3_600_000) {
    return (n) => clerkUser({
        id, email: `v${n}.${id}@example.com`, createdAt, updatedAt: createdAt + n * 1000, firstName: `v${n}`,
        metadata: { tier: ['FREE', 'PRO', 'MAXX'][n % 3], version: n },
    });
}

async function assertVersion(userId, n, createdAt) {
    const u = await userRow(userId);
    assert.ok(u, `user ${userId} is stored`);
    assert.equal(u.first_name, `v${n}`);
    assert.equal(u.email, `v${n}.${userId}@example.com`);
    assert.equal(u.tier, ['FREE', 'PRO', 'MAXX'][n % 3]);
    assert.equal(u.public_metadata.version, n);
    assert.equal(u.clerk_updated_at.getTime(), createdAt + n * 1000);
    assert.equal(await rateLimitCount(userId), 1, 'exactly one rate-limit row');
    assert.equal(await tombstone(userId), undefined);
}

async function assertDeleted(userId, deletedAt) {
    assert.equal(await userRow(userId), undefined, `user ${userId} is deleted`);
    assert.equal(await rateLimitCount(userId), 0);
    const t = await tombstone(userId);
    assert.ok(t, 'tombstone kept');
    assert.equal(t.deleted_at.getTime(), deletedAt);
}

// ---- The contract, for each forwarder -----------------------------------------------------------

for (const kind of KINDS) {
    const skip = available(kind) ? false : 'the Deno CLI is not available here';

    describe(`${kind} forwarder`, { skip }, () => {
        test('user.created, user.updated, user.deleted: 200 with the outcome, tables follow', async () => {
            const id = newUserId();
            const createdAt = Date.now() - 60_000;
            const v = versions(id, createdAt);

            const created = await deliver(kind, clerkEvent('user.created', v(0), createdAt));
            assert.equal(created.status, 200);
            assert.deepEqual(created.json, { outcome: 'applied' });
            assert.match(created.headers.get('content-type'), /^application\/json/);
            await assertVersion(id, 0, createdAt);
            const ev = await inboxRow(created.msgId);
            assert.equal(ev.outcome, 'applied');
            assert.equal(ev.event_type, 'user.created');

            const updated = await deliver(kind, clerkEvent('user.updated', v(1), createdAt + 1000));
            assert.deepEqual([updated.status, updated.json], [200, { outcome: 'applied' }]);
            await assertVersion(id, 1, createdAt);

            const deletedAt = createdAt + 5000;
            const deleted = await deliver(kind, clerkEvent('user.deleted', deletedUser(id), deletedAt));
            assert.deepEqual([deleted.status, deleted.json], [200, { outcome: 'applied' }]);
            await assertDeleted(id, deletedAt);

            // an update from before the deletion, arriving late, does not bring the user back
            const late = await deliver(kind, clerkEvent('user.updated', v(2), createdAt + 2000));
            assert.deepEqual([late.status, late.json], [200, { outcome: 'stale' }]);
            await assertDeleted(id, deletedAt);
        });

        test('duplicates: the same request again and a re-signed Svix retry answer 200 duplicate', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', versions(id)(0));
            const headers = svixHeaders(SECRET, body);
            sentIds[kind].push(headers['svix-id']);
            assert.deepEqual((await post(kind, body, headers)).json, { outcome: 'applied' });
            const before = await userRow(id);

            const again = await post(kind, body, headers);
            assert.deepEqual([again.status, again.json], [200, { outcome: 'duplicate' }]);
            const retry = await deliver(kind, body, { id: headers['svix-id'], at: new Date(Date.now() + 1000) });
            assert.deepEqual([retry.status, retry.json], [200, { outcome: 'duplicate' }]);

            assert.deepEqual(await userRow(id), before, 'nothing changed');
            assert.equal(Number((await one('SELECT count(*) AS n FROM clerk.webhook_events WHERE user_id = $1', [id])).n), 1);
        });

        test('shuffled order, sent one by one and then all at once, converges to the newest state', async () => {
            // Three users: A created + 5 updates; B created + 3 updates + deleted; C created + 5 updates.
            const t = Date.now() - 3_600_000;
            const [a, b, c] = [newUserId(), newUserId(), newUserId()];
            const events = (id, n, deleteAt) => {
                const v = versions(id, t);
                const list = [clerkEvent('user.created', v(0), t)];
                for (let k = 1; k <= n; k++) list.push(clerkEvent('user.updated', v(k), t + k * 1000));
                if (deleteAt) list.push(clerkEvent('user.deleted', deletedUser(id), deleteAt));
                return list;
            };
            const bodies = [...events(a, 5), ...events(b, 3, t + 10_000), ...events(c, 5)];

            // One by one, in a random order.
            for (const body of shuffle([...bodies.slice(0, 6), ...bodies.slice(6, 11)])) {
                const r = await deliver(kind, body);
                assert.equal(r.status, 200, JSON.stringify(r.json));
                assert.ok(['applied', 'stale'].includes(r.json.outcome), r.json.outcome);
            }
            // All at once, in a random order (C's events).
            const burst = await Promise.all(shuffle(bodies.slice(11)).map((body) => deliver(kind, body)));
            for (const r of burst) {
                assert.equal(r.status, 200, JSON.stringify(r.json));
                assert.ok(['applied', 'stale'].includes(r.json.outcome), r.json.outcome);
            }

            await assertVersion(a, 5, t);
            await assertDeleted(b, t + 10_000);
            await assertVersion(c, 5, t);
            const n = Number((await one('SELECT count(*) AS n FROM clerk.webhook_events WHERE user_id = ANY($1)', [[a, b, c]])).n);
            assert.equal(n, bodies.length, 'one inbox row per delivery');
        });

        test('a body changed by one byte after signing: 401 {"error":"28000"}, nothing stored', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'eve@example.com', createdAt: Date.now(), metadata: { tier: 'FREE' } }));
            const headers = svixHeaders(SECRET, body);
            const i = body.indexOf('"tier":"FREE"') + '"tier":"'.length;
            const tampered = body.slice(0, i) + 'P' + body.slice(i + 1);
            const r = await post(kind, tampered, headers);
            assert.deepEqual([r.status, r.json], [401, { error: '28000' }]);
            await assertNothingStored(headers['svix-id'], id);
        });

        test('a body re-serialised after signing: 401', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'reser@example.com', createdAt: Date.now() }));
            const headers = svixHeaders(SECRET, body);
            const r = await post(kind, JSON.stringify(JSON.parse(body), null, 1), headers);
            assert.deepEqual([r.status, r.json], [401, { error: '28000' }]);
            await assertNothingStored(headers['svix-id'], id);
        });

        test('a delivery signed 10 minutes ago (expired timestamp): 401, nothing stored', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'late@example.com', createdAt: Date.now() }));
            const r = await deliver(kind, body, { at: new Date(Date.now() - 10 * 60 * 1000) });
            assert.deepEqual([r.status, r.json], [401, { error: '28000' }]);
            await assertNothingStored(r.msgId, id);
        });

        test('no signature headers, or another endpoint\'s secret: 401', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'anon@example.com', createdAt: Date.now() }));
            const bare = await post(kind, body);
            assert.deepEqual([bare.status, bare.json], [401, { error: '28000' }]);
            const other = await deliver(kind, body, { secret: 'whsec_b3RoZXJlbmRwb2ludHNlY3JldDEyMzQ1Njc4' });
            assert.deepEqual([other.status, other.json], [401, { error: '28000' }]);
            await assertNothingStored(other.msgId, id);
        });

        test('the Standard Webhooks header names pass through too', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'std@example.com', createdAt: Date.now() }));
            const s = svixHeaders(SECRET, body);
            sentIds[kind].push(s['svix-id']);
            const r = await post(kind, body, {
                'Webhook-Id': s['svix-id'], 'Webhook-Timestamp': s['svix-timestamp'], 'Webhook-Signature': s['svix-signature'],
            });
            assert.deepEqual([r.status, r.json], [200, { outcome: 'applied' }]);
            assert.equal((await userRow(id)).email, 'std@example.com');
        });

        test('an event type clerk_sync does not handle: 200 ignored, recorded', async () => {
            const body = clerkEvent('organization.created', {
                object: 'organization', id: `org_2${newMsgId().slice(5)}`, name: 'Acme', slug: 'acme',
                created_at: Date.now(), updated_at: Date.now(),
            });
            const r = await deliver(kind, body);
            assert.deepEqual([r.status, r.json], [200, { outcome: 'ignored' }]);
            const ev = await inboxRow(r.msgId);
            assert.equal(ev.outcome, 'ignored');
            assert.equal(ev.event_type, 'organization.created');
            assert.equal(ev.payload, body, 'the body arrived byte for byte');
        });

        test('signed bodies that are not JSON (22P02) or not a Clerk event (22023): 400', async () => {
            const notJson = 'user.created: not json {';
            const r1 = await deliver(kind, notJson);
            assert.deepEqual([r1.status, r1.json], [400, { error: '22P02' }]);
            await assertNothingStored(r1.msgId);
            const notEvent = JSON.stringify({ hello: 'world' });
            const r2 = await deliver(kind, notEvent);
            assert.deepEqual([r2.status, r2.json], [400, { error: '22023' }]);
            await assertNothingStored(r2.msgId);
        });

        test('non-ASCII text arrives intact; a body that is not UTF-8 is refused with 400', async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({
                id, email: 'zoe@example.com', createdAt: Date.now(), firstName: 'Zoë 🚀', lastName: 'Ørsted-Łukasz',
            }));
            const r = await deliver(kind, body);
            assert.deepEqual([r.status, r.json], [200, { outcome: 'applied' }]);
            const u = await userRow(id);
            assert.equal(u.first_name, 'Zoë 🚀');
            assert.equal(u.last_name, 'Ørsted-Łukasz');

            const bytes = Buffer.concat([Buffer.from('{"type":"user.created","data":{"first_name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
            const bad = await post(kind, bytes, { 'svix-id': newMsgId(), 'svix-timestamp': '1', 'svix-signature': 'v1,x' });
            assert.deepEqual([bad.status, bad.json], [400, { error: 'invalid_utf8' }]);
        });

        test('a 1 MB body is applied; bodies over the 2 MiB limit answer 413', async () => {
            const id = newUserId();
            const metadata = { tier: 'ENTERPRISE' };
            for (let i = 0; i < 1000; i++) metadata[`note_${i}`] = `${i}:`.padEnd(1000, 'x');
            const body = clerkEvent('user.created', clerkUser({ id, email: 'big@example.com', createdAt: Date.now(), metadata }));
            assert.ok(body.length > 1_000_000 && body.length < 2 * 1024 * 1024, `body is ${body.length} bytes`);
            const r = await deliver(kind, body);
            assert.deepEqual([r.status, r.json], [200, { outcome: 'applied' }]);
            assert.deepEqual((await userRow(id)).public_metadata, metadata);
            assert.equal((await inboxRow(r.msgId)).payload, body);

            // Declared too large (content-length), and streamed without a length (chunked).
            const hugeId = newUserId();
            metadata.more = 'y'.repeat(1200 * 1024);
            const huge = clerkEvent('user.created', clerkUser({ id: hugeId, email: 'huge@example.com', createdAt: Date.now(), metadata }));
            assert.ok(huge.length > 2 * 1024 * 1024);
            const declared = await deliver(kind, huge);
            assert.deepEqual([declared.status, declared.json], [413, { error: 'payload_too_large' }]);
            const headers = svixHeaders(SECRET, huge);
            const bytes = Buffer.from(huge);
            const stream = new ReadableStream({
                start(controller) {
                    for (let at = 0; at < bytes.length; at += 65536) controller.enqueue(bytes.subarray(at, at + 65536));
                    controller.close();
                },
            });
            const chunked = await post(kind, stream, headers, { duplex: 'half' });
            assert.deepEqual([chunked.status, chunked.json], [413, { error: 'payload_too_large' }]);
            await assertNothingStored(declared.msgId, hugeId);
            await assertNothingStored(headers['svix-id'], hugeId);
        });

        test('only POST: GET answers 405 with Allow: POST', async () => {
            const r = await fetch(forwarders[kind].url);
            assert.equal(r.status, 405);
            assert.equal(r.headers.get('allow'), 'POST');
            assert.deepEqual(await r.json(), { error: 'method_not_allowed' });
        });

        test(`a call blocked by a lock answers 500 after the forwarder's timeout, and the retry applies`, async () => {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'locked@example.com', createdAt: Date.now() }));
            const msgId = newMsgId();
            const locker = await pool.connect();
            let blocked;
            const started = Date.now();
            try {
                await locker.query('BEGIN');
                await locker.query('LOCK TABLE clerk.users IN SHARE ROW EXCLUSIVE MODE');   // blocks every write
                blocked = await deliver(kind, body, { id: msgId });
            } finally {
                await locker.query('ROLLBACK');
                locker.release();
            }
            const elapsed = Date.now() - started;
            assert.equal(blocked.status, 500, JSON.stringify(blocked.json));
            // node: statement_timeout cancels it (57014); deno: the handler's timer cancels it
            assert.ok(['57014', 'timeout'].includes(blocked.json.error), JSON.stringify(blocked.json));
            assert.ok(elapsed >= TIMEOUT_MS - 100 && elapsed < TIMEOUT_MS + 3000, `answered after ${elapsed} ms`);

            // The call was cancelled in the database, not left running to apply later.
            for (let i = 0; ; i++) {
                const running = await one(`SELECT count(*) AS n FROM pg_stat_activity
                                            WHERE usename = 'clerk_webhook' AND state = 'active'`);
                if (Number(running.n) === 0) break;
                assert.ok(i < 50, 'the blocked call is still running in the database');
                await new Promise((r) => setTimeout(r, 100));
            }
            await assertNothingStored(msgId, id);

            const retry = await deliver(kind, body, { id: msgId });
            assert.deepEqual([retry.status, retry.json], [200, { outcome: 'applied' }]);
            assert.equal((await userRow(id)).email, 'locked@example.com');
        });

        test('the log: one line per request with the svix-id; no body, no signature, no password', () => {
            const lines = forwarders[kind].lines;
            for (const id of sentIds[kind]) assert.ok(lines.some((l) => l.includes(id)), `a log line for ${id}`);
            for (const line of lines) {
                assert.doesNotMatch(line, /v1,|whsec_|Lovelace|e2e-forwarder-password|"data"/, `leaks: ${line}`);
            }
        });
    });
}

// ---- Across forwarders --------------------------------------------------------------------------

test('the edge function type-checks (deno check index.ts handler.js)', { skip: available('deno') ? false : 'no Deno CLI' },
    async () => {
        const dir = EDGE_FUNCTION.replace(/index\.ts$/, '');
        // rejects, with the type errors, unless deno exits 0
        await promisify(execFile)(DENO, ['check', '--no-lock', 'index.ts', 'handler.js'], { cwd: dir, env: { ...env, NO_COLOR: '1' } });
    });

test('the forwarders log in as clerk_webhook, which can execute clerk_apply_event and nothing else', async () => {
    const sessions = (await pool.query(`SELECT DISTINCT usename FROM pg_stat_activity WHERE usename LIKE 'clerk%'`)).rows;
    assert.deepEqual(sessions.map((r) => r.usename), ['clerk_webhook']);
    const role = await one(`SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'clerk_webhook'`);
    assert.deepEqual(role, { rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false });
    const can = await one(`SELECT has_function_privilege('clerk_webhook', 'clerk_apply_event(text, jsonb)', 'EXECUTE') AS apply,
                                  has_function_privilege('clerk_webhook', 'clerk_apply_event(jsonb)', 'EXECUTE') AS trusted,
                                  has_schema_privilege('clerk_webhook', 'clerk', 'USAGE') AS schema,
                                  has_table_privilege('clerk_webhook', 'clerk.users', 'SELECT') AS users`);
    assert.deepEqual(can, { apply: true, trusted: false, schema: false, users: false });
});

test('a forwarder whose login is refused (pg_hba.conf: SQLSTATE 28000) answers 500, never 401', async () => {
    for (const kind of KINDS.filter(available)) {
        const f = await startForwarder(kind, env.CLERK_E2E_REJECTED_URL);
        try {
            const id = newUserId();
            const body = clerkEvent('user.created', clerkUser({ id, email: 'hba@example.com', createdAt: Date.now() }));
            const headers = svixHeaders(SECRET, body);
            const response = await fetch(f.url, { method: 'POST', body, headers });
            assert.equal(response.status, 500, kind);
            assert.deepEqual(await response.json(), { error: 'database_unavailable' }, kind);
            await assertNothingStored(headers['svix-id'], id);
        } finally {
            const { code, signal } = await f.stop();
            assert.equal(code, 0, `${kind} forwarder stops cleanly on SIGTERM (${code ?? signal})`);
        }
    }
});

test('the database stops mid-stream: 5xx while it is down, re-sending after the restart converges', async () => {
    const kinds = KINDS.filter(available);
    const pgctl = (action) => promisify(exec)(`${env.CLERK_E2E_PGCTL} ${action}`);

    // 12 users: created, two updates; every third user is then deleted. Sent round by round
    // (all creations, then all first updates, ...), each delivery to the next forwarder in turn.
    const t = Date.now() - 3_600_000;
    const users = Array.from({ length: 12 }, (_, i) => ({ id: newUserId(), deleted: i % 3 === 0, createdAt: t + i }));
    const rounds = [
        users.map((u) => clerkEvent('user.created', versions(u.id, u.createdAt)(0), u.createdAt)),
        users.map((u) => clerkEvent('user.updated', versions(u.id, u.createdAt)(1), u.createdAt + 1000)),
        users.map((u) => clerkEvent('user.updated', versions(u.id, u.createdAt)(2), u.createdAt + 2000)),
        users.filter((u) => u.deleted).map((u) => clerkEvent('user.deleted', deletedUser(u.id), u.createdAt + 5000)),
    ];
    const deliveries = rounds.flat().map((body, k) => ({ id: newMsgId(), body, kind: kinds[k % kinds.length], statuses: [] }));
    const send = async (d) => {
        const r = await deliver(d.kind, d.body, { id: d.id });   // signed anew each time, as Svix retries
        d.statuses.push(r.status);
        return r;
    };
    const isUp = (r) => r.status === 200 && ['applied', 'stale', 'duplicate'].includes(r.json.outcome);
    const isRetry = (r) => r.status >= 500 && r.status <= 599;

    // Phase 1: the database is up; 3 deliveries in flight at a time.
    const queue = deliveries.slice(0, 12);
    await Promise.all([1, 2, 3].map(async () => {
        for (let d; (d = queue.shift());) assert.ok(isUp(await send(d)));
    }));

    // Phase 2: 4 deliveries are inside the database (held up by a lock) when it stops (fast mode:
    // their transactions are rolled back): each forwarder answers them 5xx.
    const locker = await pool.connect();
    locker.on('error', () => {});   // the stop terminates it too
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE clerk.users IN SHARE ROW EXCLUSIVE MODE');
    const inFlight = deliveries.slice(12, 16);
    const answers = inFlight.map(send);
    for (let i = 0; ; i++) {
        const waiting = await one(`SELECT count(*)::int AS n FROM pg_stat_activity
                                    WHERE usename = 'clerk_webhook' AND wait_event_type = 'Lock'`);
        if (waiting.n === inFlight.length) break;
        assert.ok(i < 100, `${waiting.n} of ${inFlight.length} deliveries reached the lock`);
        await new Promise((r) => setTimeout(r, 10));
    }
    const stopped = pgctl('stop');
    for (const [i, r] of (await Promise.all(answers)).entries()) {
        assert.ok(isRetry(r), `${inFlight[i].kind}: in flight at the stop, answered ${r.status} ${JSON.stringify(r.json)}`);
    }
    await stopped;
    locker.release(true);

    // Phase 3: the database is down: every answer is a 5xx, promptly, from every forwarder.
    const down = deliveries.slice(16, 24);
    for (const d of down) {
        const started = Date.now();
        const r = await send(d);
        assert.ok(isRetry(r), `${d.kind} answered ${r.status} ${JSON.stringify(r.json)} with the database down`);
        assert.ok(Date.now() - started < 5000, 'answered promptly');
    }
    assert.deepEqual(new Set(down.map((d) => d.kind)), new Set(kinds));

    // Phase 4: restarted; the forwarders reconnect by themselves.
    await pgctl('start');
    for (const d of deliveries.slice(24)) {
        const r = await send(d);
        assert.ok(isUp(r), `${d.kind} answered ${r.status} ${JSON.stringify(r.json)} after the restart`);
    }

    // Svix retries what was not answered 2xx (same svix-id, same body, a new signature).
    const failed = deliveries.filter((d) => d.statuses.at(-1) !== 200);
    assert.equal(failed.length, inFlight.length + down.length, JSON.stringify(deliveries.map((d) => d.statuses)));
    for (const d of shuffle(failed)) {
        const r = await send(d);
        assert.ok(isUp(r), `retry: ${r.status} ${JSON.stringify(r.json)}`);
    }
    // And a replay of everything changes nothing: every one is a duplicate now.
    for (const d of deliveries) {
        const r = await send(d);
        assert.deepEqual([r.status, r.json], [200, { outcome: 'duplicate' }]);
    }

    // Nothing lost: every delivery is in the inbox; nothing twice.
    const inbox = (await pool.query('SELECT svix_id, count(*)::int AS n FROM clerk.webhook_events WHERE svix_id = ANY($1) GROUP BY svix_id',
        [deliveries.map((d) => d.id)])).rows;
    assert.equal(inbox.length, deliveries.length, 'every delivery recorded');
    assert.ok(inbox.every((r) => r.n === 1), 'each exactly once');
    // The exact expected state.
    for (const u of users) {
        if (u.deleted) await assertDeleted(u.id, u.createdAt + 5000);
        else await assertVersion(u.id, 2, u.createdAt);
    }
});
