// Clerk webhooks -> clerk_apply_event(), as a Supabase Edge Function (Deno).
//
// Clerk (through Svix) POSTs each event here; this function passes the raw body and the headers to
// the database, which verifies the signature and applies the event exactly once, and answers with
// the status Svix needs: 200 applied/duplicate/stale/skipped/ignored, 401 bad signature, 400 not a
// usable event, 500 anything else (Svix retries). The logic is in handler.js (plain Web APIs);
// this file only connects it to Postgres.js and Deno.serve. Deploy steps: ../README.md.
//
// Secrets (supabase secrets set ...):
//   CLERK_SYNC_DATABASE_URL  postgres://clerk_webhook:PASSWORD@HOST:PORT/DB, a role that may only
//                            execute clerk_apply_event(text, jsonb) (never the postgres superuser)
//   CLERK_SYNC_MAX_BODY_BYTES, CLERK_SYNC_TIMEOUT_MS  optional (2 MiB, 10000)
// CLERK_FORWARDER_PORT / CLERK_FORWARDER_HOST are read only to run it with the plain Deno CLI
// (local tests); on Supabase the runtime chooses where the function listens.

import postgres from 'npm:postgres@3.4.9';
import { handler, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_MS } from './handler.js';

const url = Deno.env.get('CLERK_SYNC_DATABASE_URL');
if (!url) throw new Error('set the CLERK_SYNC_DATABASE_URL secret (see README.md)');

// One small pool per isolate. prepare: false keeps it usable through a transaction-mode pooler
// (Supavisor on port 6543, PgBouncer); connect_timeout and idle_timeout are in seconds.
const sql = postgres(url, {
    max: 3,
    prepare: false,
    connect_timeout: 5,
    idle_timeout: 30,
    backoff: () => 0.25,  // reconnect 0.25 s after a failure (the default grows to 20 s: a restarted
                          // database would see its first deliveries time out)
    onnotice: () => {},   // WARNINGs (an unknown tier) are in the server log already
});

// Errors keep Postgres.js's fields: `code` (the SQLSTATE), `severity` (FATAL when the session itself
// failed, e.g. a refused login: handler.js answers those 500, never 401).
async function applyEvent(payload: string, headers: Record<string, string>, signal: AbortSignal): Promise<string> {
    // sql.json(): Postgres.js serialises the object itself (a JSON.stringify'd string would arrive as
    // a JSON string, not an object: 22023).
    const query = sql`SELECT clerk_apply_event(${payload}::text, ${sql.json(headers)}::jsonb) AS outcome`;
    signal.addEventListener('abort', () => query.cancel(), { once: true });
    const rows = await query;
    return rows[0].outcome as string;
}

const numberEnv = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const deps = {
    applyEvent,
    maxBodyBytes: numberEnv('CLERK_SYNC_MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES),
    timeoutMs: numberEnv('CLERK_SYNC_TIMEOUT_MS', DEFAULT_TIMEOUT_MS),
};

const port = Deno.env.get('CLERK_FORWARDER_PORT');
const options: Deno.ServeTcpOptions = port === undefined ? {} : {
    port: Number(port),
    hostname: Deno.env.get('CLERK_FORWARDER_HOST') ?? '127.0.0.1',
    onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
};
const server = Deno.serve(options, (request) => handler(request, deps));

// Graceful stop under the plain CLI (the Supabase runtime manages the isolate itself).
if (port !== undefined) {
    Deno.addSignalListener('SIGTERM', async () => {
        await server.shutdown();
        await sql.end({ timeout: 5 });
        Deno.exit(0);
    });
}
