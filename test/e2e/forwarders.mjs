// Starts the example forwarders as real processes on free ports, and stops them.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const NODE_FORWARDER = `${root}examples/node-forwarder/server.mjs`;
export const EDGE_FUNCTION = `${root}examples/supabase-edge-function/index.ts`;
export const DENO = process.env.CLERK_E2E_DENO || '';

// The forwarders' timeout in these tests (10 s in production); a blocked call answers after it.
export const TIMEOUT_MS = 2000;

// Command and environment of each kind, connected to `databaseUrl`.
const kinds = {
    node: (databaseUrl) => ({
        argv: [process.execPath, NODE_FORWARDER],
        env: { DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', TIMEOUT_MS: String(TIMEOUT_MS) },
    }),
    deno: (databaseUrl) => ({
        // The permissions an edge function has: network and environment.
        argv: [DENO, 'run', '--no-lock', '--allow-net', '--allow-env', EDGE_FUNCTION],
        env: {
            CLERK_SYNC_DATABASE_URL: databaseUrl, CLERK_FORWARDER_PORT: '0', CLERK_FORWARDER_HOST: '127.0.0.1',
            CLERK_SYNC_TIMEOUT_MS: String(TIMEOUT_MS), NO_COLOR: '1',
        },
    }),
};

export const available = (kind) => kind === 'node' || (kind === 'deno' && DENO !== '');

// Starts one forwarder; resolves to { kind, url, lines (its output, one entry a line), stop() }.
export async function startForwarder(kind, databaseUrl) {
    const { argv, env } = kinds[kind](databaseUrl);
    const child = spawn(argv[0], argv.slice(1), {
        env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (process.env.CLERK_E2E_PIDFILE) appendFileSync(process.env.CLERK_E2E_PIDFILE, `${child.pid}\n`);
    const lines = [];
    let partial = '';
    let onLine = () => {};
    const collect = (chunk) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        for (const line of parts) {
            lines.push(line);
            if (process.env.CLERK_E2E_VERBOSE) console.error(`[${kind}] ${line}`);
            onLine(line);
        }
    };
    child.stdout.setEncoding('utf8').on('data', collect);
    child.stderr.setEncoding('utf8').on('data', collect);
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

    const url = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${kind} forwarder did not start:\n${lines.join('\n')}`)), 60000);
        const check = (line) => {
            const m = /listening on (http:\/\/\S+)/.exec(line);
            if (m) { clearTimeout(timer); resolve(m[1]); }
        };
        lines.forEach(check);
        onLine = check;
        exited.then(({ code, signal }) => {
            clearTimeout(timer);
            reject(new Error(`${kind} forwarder exited (${code ?? signal}):\n${lines.join('\n')}`));
        });
    });

    return {
        kind, url, lines,
        // SIGTERM, and how it ended: { code, signal }.
        async stop() {
            if (child.exitCode !== null || child.signalCode !== null) return exited;
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
            const result = await exited;
            clearTimeout(timer);
            return result;
        },
    };
}
