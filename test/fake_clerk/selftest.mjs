// Self-test of the fake Clerk API (node:test, no dependencies):  node --test test/fake_clerk/selftest.mjs
// Starts server.mjs as a child process on a free port and checks it against the documented
// behaviour of the Clerk Backend API (REFERENCE.md, openapi-bapi-2025-11-10.yml).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Dataset } from './dataset.mjs';

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url));
const KEY = 'sk_test_selftest123';
let child, base;

before(async () => {
    child = spawn(process.execPath, [SERVER, '--port', '0', '--users', '1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    base = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
            out += d;
            const m = /fake-clerk listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
            if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
    });
});

after(async () => {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'server exits cleanly on SIGTERM');
});

// One request. Resolves {status, headers, body, json} or, for a dropped or cut connection,
// {error, status?, received?, expected?}: never rejects.
const plainAgent = new http.Agent({ keepAlive: false });
function request(path, { key = KEY, headers = {}, method = 'GET', body, agent = plainAgent } = {}) {
    const h = { ...headers };
    if (key !== null) h.authorization = `Bearer ${key}`;
    return new Promise((resolve) => {
        const req = http.request(base + path, { method, headers: h, agent }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try { json = JSON.parse(text); } catch { /* not JSON */ }
                resolve({ status: res.statusCode, headers: res.headers, body: text, json });
            });
            res.on('aborted', () => resolve({ error: 'aborted', status: res.statusCode,
                received: Buffer.concat(chunks).length, expected: Number(res.headers['content-length']) }));
            res.on('error', () => {});
        });
        req.on('error', (e) => resolve({ error: e.code ?? e.message }));
        if (body !== undefined) req.end(typeof body === 'string' ? body : JSON.stringify(body));
        else req.end();
    });
}
const adminPost = (path, body) => request(path, { key: null, method: 'POST', body });
const stats = async () => (await request('/__admin/stats', { key: null })).json;

function assertClerkError(r, status, code, paramName) {
    assert.equal(r.status, status, r.body);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.ok(Array.isArray(r.json.errors) && r.json.errors.length === 1, r.body);
    const e = r.json.errors[0];
    assert.equal(e.code, code, r.body);
    assert.equal(typeof e.message, 'string');
    assert.equal(typeof e.long_message, 'string');
    assert.equal(typeof r.json.clerk_trace_id, 'string');
    if (paramName !== undefined) assert.equal(e.meta?.param_name, paramName, r.body);
}

// Pages through /users; `mode` 'cursor' or 'offset'. Returns the ids in order.
async function pageAll(prefix, { mode, limit, order = '+created_at', extra = '' }) {
    const ids = [];
    let last = null;
    for (let pages = 0; pages < 10_000; pages++) {
        let q = `${prefix}/v1/users?order_by=${encodeURIComponent(order)}&limit=${limit}${extra}`;
        if (mode === 'offset') q += `&offset=${ids.length}`;
        else if (last) q += `&starting_after=${last}`;
        const r = await request(q);
        assert.equal(r.status, 200, r.body);
        assert.ok(Array.isArray(r.json), 'a plain JSON array, no envelope');
        ids.push(...r.json.map((u) => u.id));
        if (r.json.length < limit) return ids;
        last = r.json.at(-1).id;
    }
    throw new Error('too many pages');
}

test('authentication: Clerk\'s 401 codes; sk_test_ and sk_live_ keys pass', async () => {
    assertClerkError(await request('/v1/users', { key: null }), 401, 'authentication_invalid');
    assertClerkError(await request('/v1/users', { key: null, headers: { authorization: 'Basic abc' } }), 401,
        'authorization_header_format_invalid');
    assertClerkError(await request('/v1/users', { key: 'pk_test_abc' }), 401, 'clerk_key_invalid');
    assertClerkError(await request('/v1/users', { key: 'sk_prod_abc' }), 401, 'clerk_key_invalid');
    assert.equal((await request('/v1/users', { key: 'sk_live_xyz' })).status, 200);
    assert.equal((await request('/v1/users', { key: 'sk_test_xyz' })).status, 200);
    assertClerkError(await request('/v1/users', { headers: { 'clerk-api-version': '1999-01-01' } }), 400, 'api_version_invalid');
    assert.equal((await request('/v1/users', { headers: { 'clerk-api-version': '2025-11-10' } })).status, 200);
});

test('GET /users parameter validation: 422 with the parameter named', async () => {
    for (const bad of ['0', '501', 'abc', '-1', '1.5', ''])
        assertClerkError(await request(`/v1/users?limit=${bad}`), 422, 'form_param_value_invalid', 'limit');
    for (const ok of ['1', '500']) assert.equal((await request(`/v1/users?limit=${ok}`)).status, 200);
    for (const bad of ['-1', 'x', '1e3'])
        assertClerkError(await request(`/v1/users?offset=${bad}`), 422, 'form_param_value_invalid', 'offset');
    for (const bad of ['nope', '*created_at', 'id', '--created_at'])
        assertClerkError(await request(`/v1/users?order_by=${encodeURIComponent(bad)}`), 422, 'form_param_value_invalid', 'order_by');
    for (const ok of ['created_at', '+created_at', '-updated_at', 'email_address', '-last_sign_in_at', 'username'])
        assert.equal((await request(`/v1/users?order_by=${encodeURIComponent(ok)}`)).status, 200, ok);
    const some = (await request('/v1/users?limit=1')).json[0].id;
    assertClerkError(await request(`/v1/users?order_by=-updated_at&starting_after=${some}`), 422,
        'form_param_value_invalid', 'starting_after');
    assertClerkError(await request(`/v1/users?offset=10&starting_after=${some}`), 422, 'form_param_value_invalid', 'offset');
    assert.equal((await request(`/v1/users?offset=0&order_by=created_at&starting_after=${some}`)).status, 200);
    assertClerkError(await request('/v1/users?starting_after=user_2doesnotexist0000000000000'), 422,
        'form_param_value_invalid', 'starting_after');
    assertClerkError(await request('/v1/users?page=2'), 422, 'form_param_unknown', 'page');
    assertClerkError(await request('/v1/users/count?limit=5'), 422, 'form_param_unknown', 'limit');
    assertClerkError(await request(`/v1/users?user_id=${Array.from({ length: 101 }, (_, k) => `u${k}`).join('&user_id=')}`),
        422, 'form_param_value_invalid', 'user_id');
});

test('cursor and offset paging over created_at give the same complete sequence, both directions', async () => {
    const prefix = '/s/users=1234,seed=7';
    const count = (await request(`${prefix}/v1/users/count`)).json;
    assert.deepEqual(count, { object: 'total_count', total_count: 1234 });
    const cursor = await pageAll(prefix, { mode: 'cursor', limit: 100 });
    const offset = await pageAll(prefix, { mode: 'offset', limit: 37 });
    const big = await pageAll(prefix, { mode: 'cursor', limit: 500 });
    assert.equal(cursor.length, 1234);
    assert.equal(new Set(cursor).size, 1234, 'no duplicates');
    assert.deepEqual(offset, cursor);
    assert.deepEqual(big, cursor);
    const down = await pageAll(prefix, { mode: 'cursor', limit: 99, order: '-created_at' });
    assert.deepEqual(down, [...cursor].reverse());
    const downOffset = await pageAll(prefix, { mode: 'offset', limit: 250, order: '-created_at' });
    assert.deepEqual(downOffset, down);
    // the default order is -created_at
    const dflt = (await request(`${prefix}/v1/users?limit=5`)).json.map((u) => u.id);
    assert.deepEqual(dflt, down.slice(0, 5));
    // and the order really is (created_at, id), with ties present
    const all = (await Promise.all([0, 500, 1000].map((o) =>
        request(`${prefix}/v1/users?order_by=created_at&limit=500&offset=${o}`)))).flatMap((r) => r.json);
    let ties = 0;
    for (let k = 1; k < all.length; k++) {
        const a = all[k - 1], b = all[k];
        assert.ok(a.created_at < b.created_at || (a.created_at === b.created_at && a.id < b.id), `order at ${k}`);
        if (a.created_at === b.created_at) ties++;
    }
    assert.ok(ties > 150, `many equal created_at (${ties})`);
});

test('other orderings page completely with offset', async () => {
    const prefix = '/s/users=300,seed=2';
    for (const order of ['-updated_at', 'email_address', '-first_name', 'last_sign_in_at']) {
        const ids = await pageAll(prefix, { mode: 'offset', limit: 45, order });
        assert.equal(new Set(ids).size, 300, order);
    }
    const r = await request(`${prefix}/v1/users?order_by=-updated_at&limit=500`);
    const ts = r.json.map((u) => u.updated_at);
    assert.deepEqual(ts, [...ts].sort((a, b) => b - a));
});

test('count, get by id, 404, user_id filter', async () => {
    assert.deepEqual((await request('/v1/users/count')).json, { object: 'total_count', total_count: 1000 });
    const page = (await request('/v1/users?limit=3')).json;
    const one = await request(`/v1/users/${page[1].id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.json, page[1]);
    assertClerkError(await request('/v1/users/user_2nosuchuser000000000000000000'), 404, 'resource_not_found');
    const both = await request(`/v1/users?user_id=${page[0].id}&user_id=${page[2].id}&user_id=user_unknown`);
    assert.deepEqual(both.json.map((u) => u.id).sort(), [page[0].id, page[2].id].sort());
    const arr = await request(`/v1/users?${encodeURIComponent('user_id[]')}=${page[0].id}`);
    assert.deepEqual(arr.json.map((u) => u.id), [page[0].id]);
    const n = (await request(`/v1/users/count?user_id=${page[0].id}`)).json.total_count;
    assert.equal(n, 1);
});

test('the dataset is deterministic, realistic, and has the hard cases', async () => {
    // the server's users equal the ones this process generates for the same (users, seed)
    const local = new Dataset(300, 3);
    const served = (await request('/s/users=300,seed=3/v1/users?order_by=created_at&limit=500')).json;
    assert.equal(served.length, 300);
    assert.deepEqual(served, local.rows.map((row) => local.userOf(row)));
    const other = (await request('/s/users=300,seed=4/v1/users?order_by=created_at&limit=500')).json;
    assert.notDeepEqual(other.map((u) => u.id), served.map((u) => u.id));

    const users = [];
    for (const o of [0, 500]) users.push(...(await request(`/v1/users?order_by=created_at&limit=500&offset=${o}`)).json);
    assert.equal(users.length, 1000);
    for (const u of users) {
        assert.equal(u.object, 'user');
        assert.match(u.id, /^user_[0-9A-Za-z]{27}$/);
        for (const e of u.email_addresses) assert.match(e.id, /^idn_[0-9A-Za-z]{27}$/);
        assert.ok(Number.isInteger(u.created_at) && Number.isInteger(u.updated_at) && u.updated_at >= u.created_at);
        if (u.primary_email_address_id !== null)
            assert.ok(u.email_addresses.some((e) => e.id === u.primary_email_address_id));
    }
    const phoneOnly = users.filter((u) => u.email_addresses.length === 0);
    assert.ok(phoneOnly.length > 20 && phoneOnly.every((u) => u.primary_email_address_id === null && u.phone_numbers.length === 1));
    const notFirst = users.filter((u) => u.email_addresses.length > 1 && u.email_addresses[0].id !== u.primary_email_address_id);
    assert.ok(notFirst.length > 20, `primary email not first: ${notFirst.length}`);
    assert.ok(users.some((u) => /[^\x00-\x7f]/.test(u.first_name ?? '')), 'unicode names');
    assert.ok(users.some((u) => /\p{Extended_Pictographic}/u.test(`${u.first_name} ${u.last_name}`)), 'emoji');
    assert.ok(users.some((u) => u.first_name === null) && users.some((u) => u.last_name === null) &&
        users.some((u) => u.username === null));
    const tiers = new Map();
    for (const u of users) tiers.set(u.public_metadata.tier, (tiers.get(u.public_metadata.tier) ?? 0) + 1);
    for (const t of ['PRO', 'MAXX', 'ENTERPRISE', 'gold']) assert.ok(tiers.get(t) > 0, t);
    assert.ok(tiers.get(undefined) > 700, 'most users have no tier');
    const large = users.filter((u) => JSON.stringify(u.public_metadata).length > 40_000);
    assert.equal(large.length, 1);
    assert.ok(users.some((u) => u.updated_at - u.created_at > 150 * 86_400_000), 'updated much later');
    const groups = new Map();
    for (const u of users) groups.set(u.created_at, (groups.get(u.created_at) ?? 0) + 1);
    const sizes = [...groups.values()].filter((n) => n > 1);
    assert.ok(sizes.length >= 45 && Math.min(...sizes) >= 3 && Math.max(...sizes) <= 7, `tie groups ${sizes}`);
});

test('fault injection: 5xx, dropped connections and truncated bodies, reproducibly', async () => {
    const run = async () => {
        const outcomes = [];
        for (let k = 0; k < 80; k++) {
            const r = await request('/s/users=200,fail5xx=20,drop=10,trunc=10,faultseed=9/v1/users?limit=50');
            if (r.error === 'aborted') {
                assert.ok(r.received < r.expected, 'fewer bytes than Content-Length');
                outcomes.push('trunc');
            } else if (r.error) outcomes.push('drop');
            else if (r.status >= 500) {
                if (r.status === 500) assertClerkError(r, 500, 'internal_clerk_error');
                else assert.match(r.body, /<html>/);
                outcomes.push(String(r.status));
            } else { assert.equal(r.status, 200); assert.equal(r.json.length, 50); outcomes.push('ok'); }
        }
        return outcomes;
    };
    await adminPost('/__admin/reset');
    const first = await run();
    const count = (x) => first.filter((o) => o === x).length;
    assert.ok(count('500') + count('502') + count('503') > 5, first.join(' '));
    assert.ok(count('drop') > 2 && count('trunc') > 2 && count('ok') > 30, first.join(' '));
    const s = (await stats()).scenarios['users=200,fail5xx=20,drop=10,trunc=10,faultseed=9'];
    assert.equal(s.faults.drop, count('drop'));
    assert.equal(s.faults.trunc, count('trunc'));
    await adminPost('/__admin/reset');
    assert.deepEqual(await run(), first, 'same faults after a reset');
});

test('slow requests are delayed by slowms', async () => {
    const t = Date.now();
    const r = await request('/s/users=10,slow=100,slowms=300/v1/users/count');
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t >= 290);
});

test('rate limit: 429 too_many_requests with an integer Retry-After, per API key', async () => {
    const prefix = '/s/users=10,ratelimit=5/2';
    for (let k = 0; k < 5; k++) assert.equal((await request(`${prefix}/v1/users/count`)).status, 200);
    const r = await request(`${prefix}/v1/users/count`);
    assertClerkError(r, 429, 'too_many_requests');
    assert.match(r.headers['retry-after'], /^\d+$/);
    assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 2);
    assert.equal((await request(`${prefix}/v1/users/count`, { key: 'sk_test_otherkey' })).status, 200, 'another key');
    await new Promise((res) => setTimeout(res, Number(r.headers['retry-after']) * 1000));
    assert.equal((await request(`${prefix}/v1/users/count`)).status, 200, 'allowed again after Retry-After');
    assert.equal((await request(`/s/users=10,ratelimit=5%2F2/v1/users/count`)).status, 200, '%2F works too');
});

test('scenario keys: empty, nocursor, delete, count, status, bad keys', async () => {
    assert.deepEqual((await request('/s/users=10,empty=1/v1/users')).json, []);
    assert.equal((await request('/s/users=10,empty=1/v1/users/count')).json.total_count, 10);
    const first = (await request('/s/users=10,nocursor=1/v1/users?limit=2')).json;
    assertClerkError(await request(`/s/users=10,nocursor=1/v1/users?starting_after=${first[1].id}`), 422,
        'form_param_unknown', 'starting_after');
    const all = await pageAll('/s/users=30', { mode: 'cursor', limit: 7 });
    const kept = await pageAll('/s/users=30,delete=3', { mode: 'cursor', limit: 7 });
    assert.equal(kept.length, 20);
    assert.ok(kept.every((id) => all.includes(id)));
    assert.equal((await request('/s/users=30,delete=3/v1/users/count')).json.total_count, 20);
    assert.equal((await request('/s/users=30,count=12345/v1/users/count')).json.total_count, 12345);
    assertClerkError(await request('/s/status=401/v1/users'), 401, 'authentication_invalid');
    assertClerkError(await request('/s/status=403/v1/users'), 403, 'authorization_invalid');
    assertClerkError(await request('/s/status=500/v1/users'), 500, 'internal_clerk_error');
    assertClerkError(await request('/s/nosuchkey=1/v1/users'), 400, 'fake_clerk_scenario_invalid');
    assertClerkError(await request('/s/fail5xx=200/v1/users'), 400, 'fake_clerk_scenario_invalid');
});

test('keep-alive: many requests over one connection; stats count connections and API versions', async () => {
    await adminPost('/__admin/reset');
    const c0 = (await stats()).connections;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let k = 0; k < 20; k++) {
        const r = await request('/v1/users?limit=20', { agent, headers: { 'clerk-api-version': '2025-11-10' } });
        assert.equal(r.status, 200);
    }
    agent.destroy();
    const s = await stats();
    assert.equal(s.connections - c0, 2, 'one for the 20 API requests, one for this stats request');
    assert.equal(s.requests, 20);
    assert.equal(s.by_status['200'], 20);
    assert.equal(s.users_served, 400);
    assert.deepEqual(s.api_versions, ['2025-11-10']);
    assert.equal(s.scenarios.default.requests, 20);
});

test('admin: upsert bumps updated_at, delete removes, a deleted cursor still pages', async () => {
    const scenario = 'users=25,seed=11';
    const prefix = `/s/${scenario}`;
    const before = await pageAll(prefix, { mode: 'cursor', limit: 10 });
    const victim = before[9], changed = before[3];
    const old = (await request(`${prefix}/v1/users/${changed}`)).json;
    const r = await adminPost('/__admin/users', { scenario, upsert: [
        { id: changed, public_metadata: { tier: 'PRO' } },
        { id: 'user_2newuser00000000000000000000', first_name: 'New', email_addresses: [], primary_email_address_id: null },
    ], delete: [victim, 'user_unknown'] });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json.deleted, [victim]);
    const now = (await request(`${prefix}/v1/users/${changed}`)).json;
    assert.equal(now.public_metadata.tier, 'PRO');
    assert.ok(now.updated_at > old.updated_at && now.updated_at >= Date.now() - 60_000);
    assert.equal(now.first_name, old.first_name);
    assertClerkError(await request(`${prefix}/v1/users/${victim}`), 404, 'resource_not_found');
    assert.equal((await request(`${prefix}/v1/users/count`)).json.total_count, 25);   // -1 +1
    const after = await pageAll(prefix, { mode: 'cursor', limit: 10 });
    assert.deepEqual(after, [...before.filter((id) => id !== victim), 'user_2newuser00000000000000000000']);
    // a cursor at the deleted user continues right after where it was
    const cont = (await request(`${prefix}/v1/users?order_by=created_at&limit=3&starting_after=${victim}`)).json;
    assert.deepEqual(cont.map((u) => u.id), before.slice(10, 13));
    // newest-updated first puts the upserted users on top
    const recent = (await request(`${prefix}/v1/users?order_by=-updated_at&limit=2`)).json.map((u) => u.id);
    assert.ok(recent.includes(changed));
});
