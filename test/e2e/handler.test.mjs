// The edge function's request handler (examples/supabase-edge-function/handler.js) imported into
// Node, with a stand-in database: the parts of the contract that real HTTP cannot force on demand
// (a 28000 at login, a call that never returns), and proof that the module runs outside Deno.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { handler, statusFor, CANCEL_GRACE_MS } from '../../examples/supabase-edge-function/handler.js';

const quiet = { log: () => {} };
const post = (body, headers = {}) => new Request('http://forwarder.test/', { method: 'POST', body, headers });

test('statusFor: 28000 -> 401, 22xxx -> 400, everything else -> 500', () => {
    const cases = [
        [{ code: '28000' }, 401], [{ code: '22P02' }, 400], [{ code: '22023' }, 400], [{ code: '22004' }, 400],
        [{ code: '55000' }, 500], [{ code: '55P03' }, 500], [{ code: '57014' }, 500], [{ code: '57P01' }, 500],
        [{ code: '42501' }, 500], [{ code: '08006' }, 500], [{ code: 'ECONNREFUSED' }, 500],
        [{ code: 'CONNECTION_CLOSED' }, 500], [{ code: '28000', connecting: true }, 500],
        [{ code: '28P01', connecting: true }, 500], [{ code: '22P02', connecting: true }, 500],
        [{ code: '28000', severity: 'FATAL' }, 500], [{ code: '28000', severity: 'ERROR' }, 401],
        [{ code: '57P01', severity: 'FATAL' }, 500],
        [new Error('boom'), 500], [undefined, 500], [null, 500],
    ];
    for (const [error, status] of cases) assert.equal(statusFor(error), status, JSON.stringify(error));
});

test('the body and every header reach applyEvent unchanged; 200 with the outcome', async () => {
    const seen = [];
    const body = '\uFEFF{"type":"user.created",  "data": {"first_name":"Zoë"}}';   // BOM and spacing kept
    const response = await handler(post(body, { 'Svix-Id': 'msg_1', 'X-Other': 'a' }), {
        ...quiet, applyEvent: async (payload, headers) => { seen.push({ payload, headers }); return 'applied'; },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { outcome: 'applied' });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].payload, body);
    assert.equal(seen[0].headers['svix-id'], 'msg_1');
    assert.equal(seen[0].headers['x-other'], 'a');
});

test('errors: the SQLSTATE is answered, the message only logged', async () => {
    const logged = [];
    const fail = (error) => handler(post('{}'), { log: (l) => logged.push(l), applyEvent: async () => { throw error; } });
    const r1 = await fail(Object.assign(new Error('webhook signature verification failed'), { code: '28000' }));
    assert.deepEqual([r1.status, await r1.json()], [401, { error: '28000' }]);
    const r2 = await fail(Object.assign(new Error('pg_hba.conf rejects connection'), { code: '28000', connecting: true }));
    assert.deepEqual([r2.status, await r2.json()], [500, { error: 'database_unavailable' }]);
    const r3 = await fail(Object.assign(new Error('pg_hba.conf rejects connection'), { code: '28000', severity: 'FATAL' }));
    assert.deepEqual([r3.status, await r3.json()], [500, { error: 'database_unavailable' }]);
    const r4 = await fail(Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' }));
    assert.deepEqual([r4.status, await r4.json()], [500, { error: 'database_unavailable' }]);
    const r5 = await fail(new TypeError('x is not a function'));
    assert.deepEqual([r5.status, await r5.json()], [500, { error: 'internal_error' }]);
    assert.match(logged[0], /^POST 401 28000 webhook signature verification failed/);
    assert.match(logged[1], /pg_hba\.conf rejects connection/);
});

test('a call that never returns answers 500 {"error":"timeout"} after timeoutMs plus the grace, aborting the query', async () => {
    let aborted = false;
    const started = Date.now();
    const response = await handler(post('{}'), {
        ...quiet, timeoutMs: 200,
        applyEvent: (payload, headers, signal) => new Promise(() => signal.addEventListener('abort', () => { aborted = true; })),
    });
    assert.equal(response.status, 500);
    assert.deepEqual(await response.json(), { error: 'timeout' });
    assert.ok(aborted, 'the signal aborted');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 200 + CANCEL_GRACE_MS - 50 && elapsed < 200 + CANCEL_GRACE_MS + 1000, `${elapsed} ms`);
});

test('after a timeout, the answer says what happened: cancelled -> 500, committed meanwhile -> 200', async () => {
    const slow = (settle) => ({
        ...quiet, timeoutMs: 100,
        applyEvent: (payload, headers, signal) => new Promise((resolve, reject) =>
            signal.addEventListener('abort', () => setTimeout(() => settle(resolve, reject), 20))),
    });
    const cancelled = await handler(post('{}'), slow((resolve, reject) =>
        reject(Object.assign(new Error('canceling statement due to user request'), { code: '57014' }))));
    assert.deepEqual([cancelled.status, await cancelled.json()], [500, { error: 'timeout' }]);
    const committed = await handler(post('{}'), slow((resolve) => resolve('applied')));
    assert.deepEqual([committed.status, await committed.json()], [200, { outcome: 'applied' }]);
});

test('applyEvent throwing synchronously is a 500, not a crash', async () => {
    const r = await handler(post('{}'), { ...quiet, applyEvent: () => { throw new Error('no pool'); } });
    assert.deepEqual([r.status, await r.json()], [500, { error: 'internal_error' }]);
});

test('405 for other methods, 413 over maxBodyBytes, 400 for bytes that are not UTF-8', async () => {
    const never = { ...quiet, maxBodyBytes: 10, applyEvent: async () => assert.fail('must not be called') };
    const get = await handler(new Request('http://forwarder.test/'), never);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal((await handler(post('x'.repeat(11)), never)).status, 413);
    const stream = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(6)); c.enqueue(new Uint8Array(6)); c.close(); } });
    const chunked = new Request('http://forwarder.test/', { method: 'POST', body: stream, duplex: 'half' });
    assert.equal((await handler(chunked, never)).status, 413);
    const bad = await handler(post(new Uint8Array([0x7b, 0xff, 0x7d])), never);
    assert.deepEqual([bad.status, await bad.json()], [400, { error: 'invalid_utf8' }]);
});
