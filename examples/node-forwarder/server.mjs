// Clerk webhooks -> clerk_apply_event(), as a small standalone Node process (node:http + pg).
// Put it behind your TLS proxy / load balancer and give Clerk its URL. Any path is accepted.
//
//   DATABASE_URL=postgres://clerk_webhook:PASSWORD@db:5432/app PORT=8080 node server.mjs
//
// Environment:
//   DATABASE_URL     required; a role that may only execute clerk_apply_event(text, jsonb)
//   PORT             default 8080 (0: any free port; the log line says which)
//   HOST             default: every interface
//   MAX_BODY_BYTES   default 2097152 (2 MiB); larger bodies answer 413. Clerk's events are a few KB.
//   TIMEOUT_MS       default 10000: the statement_timeout of each call; with the connect timeout
//                    (3 s) every answer comes before Svix gives up on a delivery (15 s)
//   POOL_SIZE        default 5
//
// The contract (the clerk_sync README, "Connecting Clerk webhooks"):
//   POST, clerk_apply_event returned -> 200 {"outcome": "applied"|"duplicate"|"stale"|"skipped"|"ignored"}
//   SQLSTATE 28000 (signature)      -> 401 {"error": "28000"}
//   SQLSTATE 22xxx (not an event)   -> 400 {"error": "22..."}
//   anything else                   -> 500 {"error": ...}  (database down, timeout, ...: Svix retries)
//   not POST -> 405, body too large -> 413, body not UTF-8 -> 400; GET /healthz -> 200 "ok"
// The body is passed on exactly as received (never parsed and re-serialised: the signature covers
// the raw bytes). Error messages go to the log, never into answers; bodies and signatures go nowhere.
import http from 'node:http';
import pg from 'pg';

const env = process.env;
if (!env.DATABASE_URL) {
    console.error('DATABASE_URL is required');
    process.exit(2);
}
const PORT = Number(env.PORT ?? 8080);
const HOST = env.HOST || undefined;
const MAX_BODY_BYTES = Number(env.MAX_BODY_BYTES ?? 2 * 1024 * 1024);
const TIMEOUT_MS = Number(env.TIMEOUT_MS ?? 10_000);
const CONNECT_TIMEOUT_MS = 3_000;

const pool = new pg.Pool({
    connectionString: env.DATABASE_URL,
    max: Number(env.POOL_SIZE ?? 5),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,   // also bounds the wait for a free connection
    idleTimeoutMillis: 30_000,
    statement_timeout: TIMEOUT_MS,                 // the server cancels a call that takes longer
    query_timeout: TIMEOUT_MS + 500,               // and this catches a server that stopped answering
    application_name: 'clerk-webhook-forwarder',
});
// An idle connection that breaks (the database restarted) must not crash the process: the pool
// drops it and opens a new one for the next request.
pool.on('error', (err) => log(`pool: idle connection lost: ${err.code ?? ''} ${err.message}`));

function log(line) {
    console.log(`${new Date().toISOString()} ${line}`);
}

function send(res, status, body, extraHeaders = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
        ...extraHeaders,
    });
    res.end(text);
}

class TooLarge extends Error {}

// The body as sent, at most MAX_BODY_BYTES. The rest of a body too large (declared so, or found so
// while streaming) is read and dropped before the 413: answering at once and closing would reset
// the client's upload, and it might never read the answer. requestTimeout bounds a slow sender.
function readBody(req) {
    return new Promise((resolve, reject) => {
        let chunks = [];
        let size = 0;
        let tooLarge = Number(req.headers['content-length']) > MAX_BODY_BYTES;
        req.on('data', (chunk) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) tooLarge = true;
            if (tooLarge) chunks = [];
            else chunks.push(chunk);
        });
        req.on('end', () => (tooLarge ? reject(new TooLarge()) : resolve(Buffer.concat(chunks, size))));
        req.on('error', reject);
    });
}

// UTF-8 text exactly as received: a BOM is kept, and invalid UTF-8 is refused rather than
// replaced (either would change the bytes the signature covers).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

async function applyEvent(payload, headers) {
    let client;
    try {
        client = await pool.connect();
    } catch (err) {
        // Not the delivery's fault, whatever the SQLSTATE (pg_hba.conf rejecting the login is 28000).
        err.connecting = true;
        throw err;
    }
    let broken;
    try {
        const { rows } = await client.query(
            'SELECT clerk_apply_event($1::text, $2::jsonb) AS outcome', [payload, JSON.stringify(headers)]);
        return rows[0].outcome;
    } catch (err) {
        // A client-side timeout or a lost connection: discard the client instead of pooling it.
        if (!isSqlstate(err.code) || /^(08|57P)/.test(err.code)) broken = err;
        throw err;
    } finally {
        client.release(broken);
    }
}

// SQLSTATEs: five characters, class 00-58, F0, HV, P0 or XX (not Node's EPIPE, ECONNRESET, ...).
const isSqlstate = (code) => typeof code === 'string' && /^([0-5][0-9]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code);

// The session failing (no connection, login refused, server shutting down: FATAL) is never the
// delivery's fault, whatever the SQLSTATE; clerk_apply_event's own errors are all ERROR-level.
const sessionFailed = (err) => Boolean(err.connecting) || err.severity === 'FATAL' || err.severity === 'PANIC';

// An open connection that broke under the call (the server restarted or dropped it since it was
// opened): worth one retry on another connection. A failure to connect is not retried.
const connectionBroke = (err) => !err.connecting && (['57P01', '57P02', 'ECONNRESET', 'EPIPE'].includes(err.code)
    || /Connection terminated/i.test(err.message));

function statusFor(err) {
    if (sessionFailed(err)) return 500;
    if (err.code === '28000') return 401;
    if (isSqlstate(err.code) && err.code.startsWith('22')) return 400;
    return 500;
}

async function handle(req, res) {
    const started = Date.now();
    const svixId = req.headers['svix-id'] ?? req.headers['webhook-id'] ?? '-';
    const done = (status, body, what, extra) => {
        send(res, status, body, extra);
        log(`${req.method} ${req.url} ${status} ${what} svix-id=${svixId} ${Date.now() - started}ms`);
    };

    if (req.method === 'GET' && req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
    }
    if (req.method !== 'POST') return done(405, { error: 'method_not_allowed' }, 'method_not_allowed', { allow: 'POST' });

    let payload;
    try {
        payload = utf8.decode(await readBody(req));
    } catch (err) {
        if (err instanceof TooLarge) return done(413, { error: 'payload_too_large' }, 'payload_too_large', { connection: 'close' });
        if (err instanceof TypeError) return done(400, { error: 'invalid_utf8' }, 'invalid_utf8');
        throw err;
    }

    try {
        // Every request header, names lower-cased by Node; clerk_apply_event picks the svix-* ones.
        let outcome;
        try {
            outcome = await applyEvent(payload, req.headers);
        } catch (err) {
            // A connection that broke under the call (the database restarted since it was opened)
            // is retried once at once: clerk_apply_event is idempotent per svix-id, so a second
            // call is safe even if the first one committed (it answers duplicate).
            if (!connectionBroke(err) || Date.now() - started > 500) throw err;
            log(`retrying on another connection after: ${err.code ?? ''} ${err.message}`);
            outcome = await applyEvent(payload, req.headers);
        }
        done(200, { outcome }, outcome);
    } catch (err) {
        const status = statusFor(err);
        // A short code only (the SQLSTATE, or what went wrong): messages stay in the log.
        const code = sessionFailed(err) ? 'database_unavailable'
            : isSqlstate(err.code) ? err.code
            : /timeout/i.test(err.message) ? 'timeout'   // pg's query_timeout
            : typeof err.code === 'string' || /Connection terminated/i.test(err.message) ? 'database_unavailable'
            : 'internal_error';
        done(status, { error: code }, `${code} ${err.message}`);
    }
}

const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
        log(`unexpected: ${err.stack ?? err}`);
        if (!res.headersSent) send(res, 500, { error: 'internal_error' });
        else res.destroy();
    });
});
// A slow or stalled client must not hold a connection for long (the body is read before the
// database is touched, so this never cuts a database call short).
server.requestTimeout = 10_000;
server.headersTimeout = 5_000;

server.listen(PORT, HOST, () => {
    const a = server.address();
    log(`listening on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
});

// Graceful stop: no new connections, finish the requests under way, close the pool.
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
        if (stopping) return;
        stopping = true;
        log(`${signal}: stopping`);
        server.close(async () => {
            await pool.end();
            process.exit(0);
        });
        server.closeIdleConnections();
        setTimeout(() => process.exit(1), TIMEOUT_MS + 5_000).unref();
    });
}
