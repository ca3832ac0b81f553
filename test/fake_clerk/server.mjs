#!/usr/bin/env node
// fake-clerk: a local stand-in for the Clerk Backend API (the parts clerk_sync uses), faithful to
// the documented behaviour in shared/REFERENCE.md and Clerk's OpenAPI spec (2025-11-10):
//   GET /v1/users, GET /v1/users/count, GET /v1/users/{user_id}
// with Clerk's auth errors, 422 validation, error body shape, rate limiting (429 + Retry-After),
// plus injectable faults chosen by URL, so a pg_regress test can pick behaviour through
// clerk_sync.api_url alone:
//   http://127.0.0.1:5580/s/users=1000,seed=3,fail5xx=20,drop=5,trunc=5/v1
// Node 20, no dependencies. Usage and the scenario keys: README.md beside this file.
//
//   node server.mjs [--port N] [--users N] [--rate-limit N/W] [--cache-mb MB] [--tls-cert F --tls-key F] [--log]
// --cache-mb: how much serialised user JSON to keep in memory (default 512; 0 = none).
// --tls-cert, --tls-key: serve https with this PEM certificate (chain) and key.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { Dataset, ORDER_FIELDS, setCacheBudget } from './dataset.mjs';

// ---- command line --------------------------------------------------------------------------------

function parseArgs(argv) {
    const opts = { port: Number(process.env.PORT ?? 5580), users: 1000, rateLimit: null, cacheMb: 512, log: false,
                   tlsCert: null, tlsKey: null };
    for (let k = 0; k < argv.length; k++) {
        const a = argv[k];
        const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
        const value = () => inline ?? argv[++k];
        switch (flag) {
        case '--port': opts.port = Number(value()); break;
        case '--users': opts.users = Number(value()); break;
        case '--rate-limit': opts.rateLimit = parseRate(value()); break;
        case '--cache-mb': opts.cacheMb = Number(value()); break;
        case '--tls-cert': opts.tlsCert = value(); break;
        case '--tls-key': opts.tlsKey = value(); break;
        case '--log': opts.log = true; break;
        case '--help': case '-h':
            console.log('usage: node server.mjs [--port N] [--users N] [--rate-limit N/W] [--cache-mb MB] [--tls-cert F --tls-key F] [--log]');
            process.exit(0);
            break;
        default:
            console.error(`fake-clerk: unknown option ${a}`);
            process.exit(2);
        }
    }
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) die('bad --port');
    if (!Number.isInteger(opts.users) || opts.users < 0) die('bad --users');
    if (opts.rateLimit === undefined) die('bad --rate-limit (want N/W, e.g. 100/10)');
    if (!opts.tlsCert !== !opts.tlsKey) die('--tls-cert and --tls-key go together');
    return opts;
}

function die(msg) { console.error(`fake-clerk: ${msg}`); process.exit(2); }

// "100/10" -> { n: 100, w: 10 } (requests per W seconds); "0" or "off" -> null; invalid -> undefined
function parseRate(s) {
    if (s === '0' || s === 'off') return null;
    const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(s ?? '');
    if (!m || Number(m[1]) < 1 || Number(m[2]) <= 0) return undefined;
    return { n: Number(m[1]), w: Number(m[2]) };
}

const OPTS = parseArgs(process.argv.slice(2));
setCacheBudget(OPTS.cacheMb * 1024 * 1024);

// ---- Clerk error bodies --------------------------------------------------------------------------

// Clerk's ClerkErrors shape: {"errors":[{message,long_message,code,meta?}],"clerk_trace_id"}.
class ClerkError {
    constructor(status, code, message, longMessage, meta, headers = {}) {
        Object.assign(this, { status, code, message, longMessage, meta, headers });
    }
    body() {
        const e = { message: this.message, long_message: this.longMessage, code: this.code };
        if (this.meta) e.meta = this.meta;
        return JSON.stringify({ errors: [e], clerk_trace_id: randomBytes(16).toString('hex') });
    }
}

const E = {
    authMissing: () => new ClerkError(401, 'authentication_invalid', 'Invalid authentication',
        'Unable to authenticate the request, you need to supply an active API key'),
    authFormat: () => new ClerkError(401, 'authorization_header_format_invalid', 'Invalid Authorization header format',
        'The Authorization header must be of the form `Bearer <secret key>`.'),
    keyInvalid: () => new ClerkError(401, 'clerk_key_invalid', 'Secret Key is invalid',
        'The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.'),
    versionInvalid: (v) => new ClerkError(400, 'api_version_invalid', 'Invalid API version',
        `The API version "${v}" is not a valid API version. Supported versions: ${API_VERSIONS.join(', ')}.`),
    forbidden: () => new ClerkError(403, 'authorization_invalid', 'Unauthorized request',
        'You are not authorized to perform this request'),
    notFound: () => new ClerkError(404, 'resource_not_found', 'not found', 'Resource not found'),
    unknownParam: (p) => new ClerkError(422, 'form_param_unknown', 'is unknown',
        `${p} is not a valid parameter for this request.`, { param_name: p }),
    invalid: (p, long) => new ClerkError(422, 'form_param_value_invalid', 'is invalid', long, { param_name: p }),
    missing: (p) => new ClerkError(422, 'form_param_missing', 'missing data',
        `${p} must be included.`, { param_name: p }),
    tooMany: (retryAfter) => new ClerkError(429, 'too_many_requests', 'Too many requests',
        'Too many requests, please try again later.', undefined, { 'Retry-After': String(retryAfter) }),
    internal: () => new ClerkError(500, 'internal_clerk_error', 'Oops, an unexpected error occurred',
        "There was an internal error on our servers. We've been notified and are working on fixing it."),
    badScenario: (why) => new ClerkError(400, 'fake_clerk_scenario_invalid', 'invalid fake-clerk scenario', why),
};

// What `status=CODE` answers with: Clerk's own code for the status where one is documented.
function errorForStatus(code) {
    switch (code) {
    case 400: return E.versionInvalid('(forced)');
    case 401: return E.authMissing();
    case 403: return E.forbidden();
    case 404: return E.notFound();
    case 422: return E.invalid('(forced)', 'forced by the status= scenario key');
    case 429: return E.tooMany(1);
    case 500: return E.internal();
    default: return new ClerkError(code, 'fake_clerk_forced_status', http.STATUS_CODES[code] ?? 'error',
        `status ${code} forced by the status= scenario key`);
    }
}

// The gateway pages a 502/503 comes with in real life: HTML, not JSON.
const htmlError = (status) => `<html>\r\n<head><title>${status} ${http.STATUS_CODES[status]}</title></head>\r\n` +
    `<body>\r\n<center><h1>${status} ${http.STATUS_CODES[status]}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n`;

const API_VERSIONS = ['2021-02-05', '2024-10-01', '2025-04-10', '2025-11-10'];

// ---- scenarios -----------------------------------------------------------------------------------

// "users=1000,seed=3,fail5xx=20" -> options. Throws ClerkError(400) on an unknown key or bad value.
const PERCENT_KEYS = ['fail5xx', 'drop', 'trunc', 'slow'];
function parseScenario(text) {
    const s = { users: OPTS.users, seed: 1, faultseed: 1, slowms: 2000, fail5xx: 0, drop: 0, trunc: 0, slow: 0,
        ratelimit: OPTS.rateLimit, nocursor: false, delete: 0, empty: false, count: null, status: null, gzip: false };
    if (!text) return s;
    for (const part of text.split(',')) {
        if (part === '') continue;
        const eq = part.indexOf('=');
        const key = eq < 0 ? part : part.slice(0, eq), val = eq < 0 ? '1' : part.slice(eq + 1);
        const int = (min, max = Number.MAX_SAFE_INTEGER) => {
            if (!/^\d+$/.test(val) || Number(val) < min || Number(val) > max) throw E.badScenario(`${key}=${val}: want an integer in ${min}..${max}`);
            return Number(val);
        };
        const bool = () => { if (val !== '0' && val !== '1') throw E.badScenario(`${key}=${val}: want 0 or 1`); return val === '1'; };
        switch (key) {
        case 'users': s.users = int(0, 50_000_000); break;
        case 'seed': s.seed = int(0, 0xffffffff); break;
        case 'faultseed': s.faultseed = int(0, 0xffffffff); break;
        case 'fail5xx': case 'drop': case 'trunc': case 'slow': s[key] = int(0, 100); break;
        case 'slowms': s.slowms = int(0, 600_000); break;
        case 'ratelimit': {
            const r = parseRate(val);
            if (r === undefined) throw E.badScenario(`ratelimit=${val}: want N/W (e.g. 100/10) or 0`);
            s.ratelimit = r; break;
        }
        case 'nocursor': s.nocursor = bool(); break;
        case 'delete': s.delete = int(0); break;
        case 'empty': s.empty = bool(); break;
        case 'count': s.count = int(0); break;
        case 'status': s.status = int(100, 599); break;
        case 'gzip': s.gzip = bool(); break;
        default: throw E.badScenario(`unknown scenario key "${key}"`);
        }
    }
    if (PERCENT_KEYS.reduce((a, k) => a + s[k], 0) > 100) throw E.badScenario('fail5xx+drop+trunc+slow exceed 100');
    return s;
}

// Per-scenario state: the fault PRNG's request counter and the rate-limit windows.
const scenarioState = new Map();   // scenario text -> { counter, windows: Map(apiKey -> [times]) }
function stateOf(name) {
    let st = scenarioState.get(name);
    if (!st) scenarioState.set(name, st = { counter: 0, windows: new Map() });
    return st;
}

// Datasets, cached by (users, seed, delete). Mutations through the admin API stick to one of them.
const datasets = new Map();
function datasetOf(s) {
    const key = `${s.users}:${s.seed}:${s.delete}`;
    let ds = datasets.get(key);
    if (!ds) {
        ds = new Dataset(s.users, s.seed, s.delete);
        datasets.set(key, ds);
        if (OPTS.log) console.error(`fake-clerk: built dataset users=${s.users} seed=${s.seed} delete=${s.delete} in ${ds.buildMs} ms`);
    }
    return ds;
}

// Deterministic fault choice for request number n of a scenario: one uniform draw in [0, 100)
// split into bands fail5xx | drop | trunc | slow | none, a second one for the 5xx flavour.
function hash32(a, b) {
    let x = (Math.imul(a ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
    return (x ^ (x >>> 16)) >>> 0;
}
function chooseFault(s, n) {
    const r = (hash32(s.faultseed, n) % 10000) / 100;   // 0.00 .. 99.99
    let edge = 0;
    for (const k of PERCENT_KEYS) {
        edge += s[k];
        if (r < edge) {
            if (k !== 'fail5xx') return { kind: k };
            const f = hash32(s.faultseed ^ 0xabcdef, n) % 10;      // 70% 500 JSON, 20% 502, 10% 503 (HTML)
            return { kind: k, status: f < 7 ? 500 : f < 8.5 ? 502 : 503 };
        }
    }
    return null;
}

// Sliding-window limiter: at most n requests in any w seconds per (scenario, API key). A refused
// request does not take a slot. Returns 0 when allowed, else the Retry-After seconds (>= 1).
function rateLimit(st, s, key, now) {
    if (!s.ratelimit) return 0;
    const { n, w } = s.ratelimit;
    let times = st.windows.get(key);
    if (!times) st.windows.set(key, times = []);
    const horizon = now - w * 1000;
    let drop = 0;
    while (drop < times.length && times[drop] <= horizon) drop++;
    if (drop) times.splice(0, drop);
    if (times.length >= n) return Math.max(1, Math.ceil((times[0] + w * 1000 - now) / 1000));
    times.push(now);
    return 0;
}

// ---- statistics ----------------------------------------------------------------------------------

function newStats() {
    return { requests: 0, by_status: {}, by_route: {}, faults: { fail5xx: 0, drop: 0, trunc: 0, slow: 0 },
        rate_limited: 0, users_served: 0, api_versions: [] };
}
let stats, scenarioStats, connections, startedAt;
function resetStats() {
    stats = newStats();
    scenarioStats = new Map();
    connections = 0;
    startedAt = Date.now();
}
resetStats();
const statsFor = (name) => {
    let st = scenarioStats.get(name);
    if (!st) scenarioStats.set(name, st = newStats());
    return st;
};
const both = (name, f) => { f(stats); f(statsFor(name)); };

// ---- GET /v1/users: parameters -------------------------------------------------------------------

const LIST_PARAMS = ['email_address', 'phone_number', 'external_id', 'username', 'web3_wallet', 'user_id',
    'organization_id', 'provider_user_id'];
const STRING_PARAMS = ['query', 'email_address_query', 'phone_number_query', 'username_query', 'name_query', 'provider'];
const INT_PARAMS = ['last_active_at_before', 'last_active_at_after', 'last_active_at_since', 'created_at_before',
    'created_at_after', 'last_sign_in_at_before', 'last_sign_in_at_after'];
const PAGING_PARAMS = ['limit', 'offset', 'order_by', 'starting_after'];

// Groups the query string by parameter: "user_id" and "user_id[]" are the same list parameter.
// Throws 422 form_param_unknown for anything the endpoint does not document.
function readParams(searchParams, paging) {
    const p = new Map();
    for (const [rawName, value] of searchParams) {
        const name = rawName.endsWith('[]') ? rawName.slice(0, -2) : rawName;
        const known = LIST_PARAMS.includes(name) || STRING_PARAMS.includes(name) || INT_PARAMS.includes(name) ||
            name === 'banned' || (paging && PAGING_PARAMS.includes(name));
        if (!known) throw E.unknownParam(rawName);
        if (!p.has(name)) p.set(name, []);
        p.get(name).push(value);
    }
    return p;
}

// The user filters (both /users and /users/count). Returns null (no filter) or a predicate on
// (row, user-getter), plus a fast path: the ids to look up when only user_id includes are given.
function buildFilter(p) {
    const preds = [];
    let idLookup = null;
    const lists = {};
    for (const name of LIST_PARAMS) {
        if (!p.has(name)) continue;
        // a "+" prefix arrives as a space when the client did not encode it ('+' means ' ' in a query)
        const vals = p.get(name).flatMap((v) => v.split(',')).map((v) => v.replace(/^ /, '+')).filter((v) => v !== '');
        if (vals.length > 100) throw E.invalid(name, `${name} accepts at most 100 values.`);
        lists[name] = vals;
    }
    const plusMinus = (vals) => ({
        inc: vals.filter((v) => !v.startsWith('-')).map((v) => v.replace(/^\+/, '')),
        exc: new Set(vals.filter((v) => v.startsWith('-')).map((v) => v.slice(1))),
    });
    if (lists.user_id) {
        const { inc, exc } = plusMinus(lists.user_id);
        if (inc.length) { const set = new Set(inc); idLookup = inc; preds.push((row) => set.has(row.id)); }
        if (exc.size) preds.push((row) => !exc.has(row.id));
    }
    if (lists.external_id) {
        const { inc, exc } = plusMinus(lists.external_id);
        if (inc.length) { const set = new Set(inc); preds.push((row, u) => set.has(u().external_id)); }
        if (exc.size) preds.push((row, u) => !exc.has(u().external_id));
    }
    if (lists.organization_id) {   // nobody here belongs to an organization
        const { inc } = plusMinus(lists.organization_id);
        if (inc.length) preds.push(() => false);
    }
    if (lists.web3_wallet) preds.push(() => false);   // nobody here has a web3 wallet
    if (lists.email_address) {
        const set = new Set(lists.email_address.map((v) => v.toLowerCase()));
        preds.push((row, u) => u().email_addresses.some((e) => set.has(e.email_address.toLowerCase())));
    }
    if (lists.phone_number) {
        const set = new Set(lists.phone_number);
        preds.push((row, u) => u().phone_numbers.some((x) => set.has(x.phone_number)));
    }
    if (lists.username) {
        const set = new Set(lists.username);
        preds.push((row, u) => set.has(u().username));
    }
    const one = (name) => p.get(name)?.[0];
    if (p.has('provider') !== p.has('provider_user_id'))
        throw E.missing(p.has('provider') ? 'provider_user_id' : 'provider');
    if (p.has('provider')) {
        const provider = one('provider'), set = new Set(lists.provider_user_id ?? []);
        preds.push((row, u) => u().external_accounts.some((a) => a.provider === provider && set.has(a.provider_user_id)));
    }
    const contains = (hay, needle) => typeof hay === 'string' && hay.toLowerCase().includes(needle);
    const q = (name, f) => {
        if (!p.has(name)) return;
        const needle = one(name).toLowerCase();
        if (needle !== '') preds.push((row, u) => f(u(), needle));
    };
    q('email_address_query', (u, n) => u.email_addresses.some((e) => contains(e.email_address, n)));
    q('phone_number_query', (u, n) => u.phone_numbers.some((x) => contains(x.phone_number, n)));
    q('username_query', (u, n) => contains(u.username, n));
    q('name_query', (u, n) => contains(u.first_name, n) || contains(u.last_name, n) ||
        contains(`${u.first_name ?? ''} ${u.last_name ?? ''}`, n));
    q('query', (u, n) => contains(u.id, n) || contains(u.username, n) || contains(u.first_name, n) ||
        contains(u.last_name, n) || u.email_addresses.some((e) => contains(e.email_address, n)) ||
        u.phone_numbers.some((x) => contains(x.phone_number, n)));
    if (p.has('banned')) {
        const v = one('banned');
        if (v !== 'true' && v !== 'false') throw E.invalid('banned', 'banned must be true or false.');
        preds.push((row, u) => u().banned === (v === 'true'));
    }
    for (const name of INT_PARAMS) {
        if (!p.has(name)) continue;
        const v = one(name);
        if (!/^-?\d+$/.test(v)) throw E.invalid(name, `${name} must be an integer (milliseconds since the epoch).`);
        const t = Number(v);
        const [field, op] = name.split(/_(before|after|since)$/);
        const get = field === 'created_at' ? (row) => row.ca : (row, u) => u()[field];
        if (op === 'before') preds.push((row, u) => { const x = get(row, u); return x !== null && x < t; });
        else if (op === 'after') preds.push((row, u) => { const x = get(row, u); return x !== null && x > t; });
        else preds.push((row, u) => { const x = get(row, u); return x !== null && x >= t; });
    }
    if (!preds.length) return null;
    return { preds, idLookup };
}

// Rows of `ordered` (in that order) that pass the filter.
function applyFilter(ds, ordered, filter) {
    if (!filter) return ordered;
    let candidates = ordered;
    if (filter.idLookup && ordered === ds.rows) {
        candidates = [...new Set(filter.idLookup)].map((id) => ds.findRow(id)).filter(Boolean)
            .sort((a, b) => (a.ca - b.ca) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    }
    return candidates.filter((row) => {
        let cached;
        const u = () => (cached ??= ds.userOf(row));
        return filter.preds.every((f) => f(row, u));
    });
}

// ---- the API routes ------------------------------------------------------------------------------

// GET /v1/users -> the page (JSON array as a Buffer), and how many users it holds.
function listUsers(ds, s, searchParams) {
    const p = readParams(searchParams, true);
    const one = (name) => p.get(name)?.[0];   // Clerk keeps the first of repeated parameters

    let limit = 10;
    if (p.has('limit')) {
        const v = one('limit');
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 500)
            throw E.invalid('limit', 'limit must be an integer between 1 and 500.');
        limit = Number(v);
    }
    let offset = 0;
    if (p.has('offset')) {
        const v = one('offset');
        if (!/^\d+$/.test(v)) throw E.invalid('offset', 'offset must be an integer greater than or equal to 0.');
        offset = Number(v);
    }
    let field = 'created_at', desc = true;
    if (p.has('order_by')) {
        // '+created_at' sent unencoded arrives as ' created_at': read a leading space as '+'
        const v = one('order_by').replace(/^ /, '+');
        const m = /^([+-]?)([a-z0-9_]+)$/.exec(v);
        if (!m || !ORDER_FIELDS.includes(m[2]))
            throw E.invalid('order_by', `order_by must be one of ${ORDER_FIELDS.join(', ')}, optionally prefixed by + or -.`);
        field = m[2];
        desc = m[1] === '-';
    }
    let cursor = null;
    if (p.has('starting_after')) {
        if (s.nocursor) throw E.unknownParam('starting_after');
        cursor = one('starting_after');
        if (field !== 'created_at')
            throw E.invalid('starting_after', 'starting_after can only be used when ordering by created_at.');
        if (offset !== 0)
            throw E.invalid('offset', 'offset cannot be combined with starting_after.');
        if (cursor === '') throw E.invalid('starting_after', 'starting_after must be a user ID.');
    }
    const filter = buildFilter(p);
    if (s.empty) return { body: Buffer.from('[]'), count: 0 };

    // `asc`: the matching rows in ascending (field, id) order; the page walks it either way.
    const asc = applyFilter(ds, ds.sortedBy(field), filter);
    let start;   // index into the walk order (ascending, or reversed when desc)
    if (cursor !== null) {
        const ca = ds.createdAtOfId(cursor);
        if (ca === undefined)
            throw E.invalid('starting_after', `No user was found with id ${cursor}.`);
        // works for a cursor user deleted since (its position is known) and for filtered lists
        const lb = Dataset.lowerBound(asc, ca, cursor);
        const at = lb < asc.length && asc[lb].id === cursor;
        start = desc ? asc.length - lb : (at ? lb + 1 : lb);
    } else {
        start = offset;
    }
    const rows = [];
    for (let k = start; k < asc.length && rows.length < limit; k++)
        rows.push(desc ? asc[asc.length - 1 - k] : asc[k]);
    return { body: ds.page(rows), count: rows.length };
}

function countUsers(ds, s, searchParams) {
    const filter = buildFilter(readParams(searchParams, false));
    const n = s.count ?? (filter ? applyFilter(ds, ds.rows, filter).length : ds.size);
    return JSON.stringify({ object: 'total_count', total_count: n });
}

// ---- HTTP plumbing -------------------------------------------------------------------------------

function send(req, res, status, body, { headers = {}, fault = null, gzip = false, contentType = 'application/json' } = {}) {
    let buf = typeof body === 'string' ? Buffer.from(body) : body;
    const h = { 'Content-Type': contentType, ...headers };
    if (gzip && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
        buf = zlib.gzipSync(buf, { level: 1 });
        h['Content-Encoding'] = 'gzip';
    }
    h['Content-Length'] = buf.length;
    res.writeHead(status, h);
    if (fault?.kind === 'trunc' && buf.length > 1) {
        // the promised Content-Length, half the bytes, then the connection goes away
        res.write(buf.subarray(0, Math.floor(buf.length / 2)), () => res.socket?.destroy());
        return;
    }
    res.end(buf);
}

function sendError(req, res, err, opts = {}) {
    send(req, res, err.status, err.body(), { ...opts, headers: { ...err.headers, ...(opts.headers ?? {}) } });
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
    });
}

// ---- admin API (no auth) -------------------------------------------------------------------------

function statsJson() {
    const out = { ...stats, connections, uptime_ms: Date.now() - startedAt, scenarios: {} };
    for (const [name, st] of scenarioStats) out.scenarios[name] = st;
    out.datasets = [...datasets.entries()].map(([key, ds]) => ({ key, users: ds.size, build_ms: ds.buildMs }));
    return JSON.stringify(out);
}

async function admin(req, res, url) {
    const json = (status, obj) => send(req, res, status, JSON.stringify(obj));
    try {
        if (req.method === 'GET' && url.pathname === '/__admin/stats') return send(req, res, 200, statsJson());
        if (req.method === 'POST' && url.pathname === '/__admin/reset') {
            // zeroes the statistics, the fault counters and the rate-limit windows;
            // ?datasets=1 also forgets the datasets (and so every admin mutation)
            resetStats();
            scenarioState.clear();
            if (url.searchParams.get('datasets') === '1') { for (const ds of datasets.values()) ds.release(); datasets.clear(); }
            return json(200, { ok: true });
        }
        if (req.method === 'POST' && (url.pathname === '/__admin/users' || url.pathname === '/__admin/warm')) {
            const text = await readBody(req);
            const body = text ? JSON.parse(text) : {};
            const ds = datasetOf(parseScenario(body.scenario ?? ''));
            if (url.pathname === '/__admin/warm') return json(200, { users: ds.size, build_ms: ds.buildMs });
            const upserted = (body.upsert ?? []).map((u) => ds.upsert(u)).map((u) => u.id);
            const deleted = (body.delete ?? []).filter((id) => ds.delete(id));
            return json(200, { upserted, deleted, users: ds.size });
        }
        return json(404, { error: `no admin endpoint ${req.method} ${url.pathname}` });
    } catch (e) {
        return json(400, { error: e instanceof ClerkError ? e.longMessage : String(e.message ?? e) });
    }
}

// ---- the request handler -------------------------------------------------------------------------

function handle(req, res) {
    const url = new URL(req.url, 'http://fake-clerk');
    if (url.pathname.startsWith('/__admin/')) return admin(req, res, url);

    // /s/<scenario>/v1/... or /v1/...
    let scenarioText = '', path = url.pathname;
    // (the scenario may hold a '/', as in ratelimit=100/10: it ends where "/v1" begins)
    const m = /^\/s\/(.*?)(\/v1(?:\/.*)?)?$/.exec(path);
    if (m) { scenarioText = decodeURIComponent(m[1]); path = m[2] ?? '/'; }
    const name = scenarioText || 'default';
    const route = req.method + ' ' + path.replace(/^\/v1\/users\/(?!count$)[^/]+$/, '/v1/users/{user_id}');
    const version = req.headers['clerk-api-version'] ?? null;
    both(name, (st) => {
        st.requests++;
        st.by_route[route] = (st.by_route[route] ?? 0) + 1;
        if (!st.api_versions.includes(version)) st.api_versions.push(version);
    });
    res.on('finish', () => both(name, (st) => { st.by_status[res.statusCode] = (st.by_status[res.statusCode] ?? 0) + 1; }));
    if (OPTS.log) res.on('close', () => console.error(`${req.method} ${req.url} -> ${res.writableFinished ? res.statusCode : 'cut'}`));

    let s;
    try {
        s = parseScenario(scenarioText);
    } catch (e) {
        return sendError(req, res, e);
    }
    if (s.status !== null) {
        if (s.status >= 502 && s.status <= 504) return send(req, res, s.status, htmlError(s.status), { contentType: 'text/html' });
        return sendError(req, res, errorForStatus(s.status));
    }

    // authentication: "Authorization: Bearer sk_test_..." or "sk_live_..."
    const auth = req.headers.authorization;
    if (auth === undefined || auth === '') return sendError(req, res, E.authMissing());
    const am = /^Bearer +(\S+)$/i.exec(auth);
    if (!am) return sendError(req, res, E.authFormat());
    const key = am[1];
    if (!/^sk_(test|live)_\S+$/.test(key)) return sendError(req, res, E.keyInvalid());
    if (version !== null && !API_VERSIONS.includes(version)) return sendError(req, res, E.versionInvalid(version));

    const st = stateOf(scenarioText);
    const retryAfter = rateLimit(st, s, key, Date.now());
    if (retryAfter) {
        both(name, (x) => x.rate_limited++);
        return sendError(req, res, E.tooMany(retryAfter));
    }

    const fault = chooseFault(s, st.counter++);
    if (fault) both(name, (x) => x.faults[fault.kind]++);
    if (fault?.kind === 'drop') { req.socket.destroy(); return; }
    if (fault?.kind === 'fail5xx') {
        if (fault.status === 500) return sendError(req, res, E.internal());
        return send(req, res, fault.status, htmlError(fault.status), { contentType: 'text/html' });
    }

    const answer = () => {
        if (req.socket.destroyed) return;
        try {
            if (req.method !== 'GET') throw E.notFound();
            const ds = datasetOf(s);
            let body, served = 0;
            if (path === '/v1/users') ({ body, count: served } = listUsers(ds, s, url.searchParams));
            else if (path === '/v1/users/count') body = countUsers(ds, s, url.searchParams);
            else if (path.startsWith('/v1/users/') && path.indexOf('/', 10) < 0) {
                const row = ds.findRow(decodeURIComponent(path.slice(10)));
                if (!row) throw E.notFound();
                body = ds.bufOf(row);
                served = 1;
            } else throw E.notFound();
            both(name, (x) => { x.users_served += served; });
            send(req, res, 200, body, { fault, gzip: s.gzip });
        } catch (e) {
            if (!(e instanceof ClerkError)) {
                console.error(e);
                return sendError(req, res, E.internal());
            }
            sendError(req, res, e, { fault, gzip: s.gzip });
        }
    };
    if (fault?.kind === 'slow') setTimeout(answer, s.slowms);
    else answer();
}

// ---- server --------------------------------------------------------------------------------------

const server = OPTS.tlsCert
    ? https.createServer({ keepAlive: true, cert: fs.readFileSync(OPTS.tlsCert), key: fs.readFileSync(OPTS.tlsKey) }, handle)
    : http.createServer({ keepAlive: true }, handle);
server.keepAliveTimeout = 60_000;    // keep idle connections for reuse (libcurl keeps its own)
server.headersTimeout = 65_000;
server.requestTimeout = 0;           // slow=... scenarios may delay an answer for long
server.on('connection', () => { connections++; });
server.on('clientError', (err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'); });

server.listen(OPTS.port, '127.0.0.1', () => {
    console.log(`fake-clerk listening on ${OPTS.tlsCert ? 'https' : 'http'}://127.0.0.1:${server.address().port}`);
});

function shutdown() {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
