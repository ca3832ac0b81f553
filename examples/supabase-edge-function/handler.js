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
 *   with the database's error (its SQLSTATE in `code`), or with an error whose `connecting` property
 *   is true when no connection could be had: then even a SQLSTATE 28000 (pg_hba.conf rejecting the
 *   login) is the forwarder's misconfiguration, not a bad signature, and answers 500. It should
 *   cancel the query when `signal` aborts.
 * @property {number} [maxBodyBytes] larger bodies answer 413 (default 2 MiB; Clerk's are a few KB)
 * @property {number} [timeoutMs] after this long the handler answers 500 and aborts the query
 *   (default 10 s: Svix gives up on a delivery after 15 s and retries it)
 * @property {(line: string) => void} [log] one line per request (default console.log)
 */

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Whether `code` is a SQLSTATE: five characters, class 00-58, F0, HV, P0 or XX (not EPIPE, ...).
 * @param {unknown} code
 * @returns {code is string}
 */
export const isSqlstate = (code) => typeof code === 'string' && /^([0-5][0-9]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code);

/**
 * The HTTP status for a failed clerk_apply_event call.
 * @param {unknown} error
 * @returns {number}
 */
export function statusFor(error) {
    const e = /** @type {{ code?: unknown, connecting?: unknown }} */ (error ?? {});
    if (e.connecting) return 500;
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

    const abort = new AbortController();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => {
            abort.abort();
            reject(Object.assign(new Error('timed out'), { code: 'timeout' }));
        }, deps.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    });
    try {
        const outcome = await Promise.race([deps.applyEvent(payload, headers, abort.signal), timeout]);
        return done(json(200, { outcome }), String(outcome));
    } catch (e) {
        const err = /** @type {{ code?: unknown, connecting?: unknown, message?: unknown }} */ (e ?? {});
        const status = statusFor(err);
        // The SQLSTATE (or a short code) only: messages stay in the log.
        const code = err.connecting ? 'database_unavailable'
            : err.code === 'timeout' ? 'timeout'
            : isSqlstate(err.code) ? err.code
            : 'internal_error';
        return done(json(status, { error: code }), `${code} ${String(err.message ?? err)}`);
    } finally {
        clearTimeout(timer);
    }
}
