// @ts-check
// The Clerk webhook forwarder's request handler: standard Web APIs only (Request, Response,
// TextDecoder, AbortController), so the same file runs in Supabase Edge Functions (Deno, wired up by
// index.ts) and under Node (the contract test in test/e2e imports it too).
//
// The contract (see "Connecting Clerk webhooks" in the clerk_sync README):
//   - the body is read as bytes and decoded to text exactly as received: never parsed and
//     re-serialised, since the Svix signature covers the raw bytes;
//   - the body and every request header go to clerk_apply_event(payload text, headers jsonb);
//   - it returned         -> 200 {"outcome": "applied" | "duplicate" | "stale" | "skipped" | "ignored"}
//     SQLSTATE 28000      -> 401 {"error": "28000"}   (bad or missing signature, expired timestamp)
//     SQLSTATE 22xxx      -> 400 {"error": "22..."}   (signed, but not a usable Clerk event)
//     anything else       -> 500 {"error": ...}       (database down, timeout, lock timeout, missing
//                                                       grant, ...: Svix retries the delivery later)
// Error messages are logged, never answered; the body and the signature are never logged.

/**
 * What the handler needs from its host.
 * @typedef {object} Deps
 * @property {(payload: string, headers: Record<string, string>, signal: AbortSignal) => Promise<string>} applyEvent
 *   runs `SELECT clerk_apply_event($1::text, $2::jsonb)` and resolves to its result. It rejects
 *   with the client's error: a SQLSTATE in `code`, and `severity` as the server sent it. A FATAL
 *   error, or one marked `connecting: true`, is the session failing, not the delivery: even a
 *   28000 then (pg_hba.conf refusing the login) answers 500, never 401. It should cancel the query
 *   when `signal` aborts.
 * @property {number} [maxBodyBytes] larger bodies answer 413 (default 2 MiB; Clerk's are a few KB)
 * @property {number} [timeoutMs] after this long the handler aborts the query and, unless it
 *   completes within CANCEL_GRACE_MS after all, answers 500 (default 10 s: Svix gives up on a
 *   delivery after 15 s and retries it)
 * @property {(line: string) => void} [log] one line per request (default console.log)
 */

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const CANCEL_GRACE_MS = 1_000;

/**
 * Whether `code` is a SQLSTATE: five characters, class 00-58, F0, HV, P0 or XX (not EPIPE, ...).
 * @param {unknown} code
 * @returns {code is string}
 */
export const isSqlstate = (code) => typeof code === 'string' && /^([0-5][0-9]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code);

/**
 * Whether the error is the database session failing (no connection, login refused, server shutting
 * down) rather than clerk_apply_event refusing the delivery, whose errors are all ERROR-level.
 * @param {{ connecting?: unknown, severity?: unknown }} e
 */
const sessionFailed = (e) => Boolean(e.connecting) || e.severity === 'FATAL' || e.severity === 'PANIC';

/**
 * Whether an open connection broke under the call (the server restarted or dropped it since it was
 * opened): worth one retry on another connection. A failure to connect is not retried.
 * @param {unknown} error
 */
const connectionBroke = (error) => {
    const e = /** @type {{ code?: unknown, connecting?: unknown, message?: unknown }} */ (error ?? {});
    if (e.connecting) return false;
    return ['57P01', '57P02', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'ECONNRESET', 'EPIPE']
        .includes(String(e.code)) || /Connection terminated/i.test(String(e.message));
};

/**
 * The HTTP status for a failed clerk_apply_event call.
 * @param {unknown} error
 * @returns {number}
 */
export function statusFor(error) {
    const e = /** @type {{ code?: unknown, connecting?: unknown, severity?: unknown }} */ (error ?? {});
    if (sessionFailed(e)) return 500;
    if (e.code === '28000') return 401;
    if (isSqlstate(e.code) && e.code.startsWith('22')) return 400;
    return 500;
}

/** @param {number} status @param {object} body */
function json(status, body) {
    return new Response(JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
}

class TooLarge extends Error {}

/**
 * Reads the body as bytes (at most `limit`) and decodes it as UTF-8 without altering it: a BOM is
 * kept, and invalid UTF-8 is refused rather than replaced (either would break the signature).
 * @param {Request} request @param {number} limit
 * @returns {Promise<string>}
 */
async function rawBody(request, limit) {
    const declared = Number(request.headers.get('content-length'));
    if (declared > limit) throw new TooLarge();
    if (!request.body) return '';
    /** @type {Uint8Array[]} */
    const chunks = [];
    let size = 0;
    const reader = request.body.getReader();
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
            await reader.cancel();
            throw new TooLarge();
        }
        chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
        bytes.set(c, at);
        at += c.byteLength;
    }
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

/**
 * Handles one webhook delivery.
 * @param {Request} request
 * @param {Deps} deps
 * @returns {Promise<Response>}
 */
export async function handler(request, deps) {
    const started = Date.now();
    const log = deps.log ?? ((line) => console.log(line));
    const svixId = request.headers.get('svix-id') ?? request.headers.get('webhook-id') ?? '-';
    /** @param {Response} response @param {string} what */
    const done = (response, what) => {
        log(`${request.method} ${response.status} ${what} svix-id=${svixId} ${Date.now() - started}ms`);
        return response;
    };

    if (request.method !== 'POST') {
        const r = json(405, { error: 'method_not_allowed' });
        r.headers.set('allow', 'POST');
        return done(r, 'method_not_allowed');
    }

    let payload;
    try {
        payload = await rawBody(request, deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    } catch (e) {
        if (e instanceof TooLarge) return done(json(413, { error: 'payload_too_large' }), 'payload_too_large');
        if (e instanceof TypeError) return done(json(400, { error: 'invalid_utf8' }), 'invalid_utf8');
        throw e;
    }

    // Every header, lower-case names (the Fetch API's Headers give them so).
    /** @type {Record<string, string>} */
    const headers = Object.fromEntries(request.headers);

    // The call, bounded by timeoutMs. On timeout the query is cancelled and given CANCEL_GRACE_MS
    // to settle, so that the answer says what happened: a call that committed meanwhile answers 200.
    // A connection that broke under the call (the database restarted since it was opened) is
    // retried once at once: clerk_apply_event is idempotent per svix-id, so a second call is safe
    // even if the first one committed (it answers duplicate).
    const abort = new AbortController();
    const attempt = () => Promise.resolve().then(() => deps.applyEvent(payload, headers, abort.signal));
    /** @type {Promise<{ outcome: string } | { error: unknown }>} */
    const call = attempt().catch((e) => (connectionBroke(e) && !abort.signal.aborted ? attempt() : Promise.reject(e))).then((outcome) => ({ outcome }), (error) => ({ error }));
    let result = await within(call, deps.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    if (!result) {
        abort.abort();
        result = (await within(call, CANCEL_GRACE_MS)) ?? { error: undefined };
        if ('error' in result) result = { error: Object.assign(new Error('timed out'), { code: 'timeout' }) };
    }

    if ('outcome' in result) return done(json(200, { outcome: result.outcome }), String(result.outcome));
    const err = /** @type {{ code?: unknown, connecting?: unknown, severity?: unknown, message?: unknown }} */ (result.error ?? {});
    const status = statusFor(err);
    // A short code only (the SQLSTATE, or what went wrong): messages stay in the log.
    const code = err.code === 'timeout' ? 'timeout'
        : sessionFailed(err) ? 'database_unavailable'
        : isSqlstate(err.code) ? err.code
        : typeof err.code === 'string' ? 'database_unavailable'   // ECONNREFUSED, CONNECTION_CLOSED, ...
        : 'internal_error';
    return done(json(status, { error: code }), `${code} ${String(err.message ?? err)}`);
}

/**
 * The promise's value, or undefined if it has not settled within `ms`.
 * @template T
 * @param {Promise<T>} promise @param {number} ms
 * @returns {Promise<T | undefined>}
 */
async function within(promise, ms) {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const expired = new Promise((resolve) => { timer = setTimeout(resolve, ms); });
    try {
        return await Promise.race([promise, expired.then(() => undefined)]);
    } finally {
        clearTimeout(timer);
    }
}
