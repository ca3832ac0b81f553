// Serving throughput of the fake Clerk API: pages through every user with the starting_after cursor
// over one keep-alive connection, as clerk_sync does, and prints users/s.
//   node test/fake_clerk/bench.mjs [BASE_URL] [LIMIT]
//   node test/fake_clerk/bench.mjs http://127.0.0.1:5580/s/users=1000000 500
// The client does no JSON parsing (it finds the last id and counts users with Buffer.indexOf),
// so the figure is the server's.
import http from 'node:http';

const base = process.argv[2] ?? 'http://127.0.0.1:5580/s/users=1000000';
const limit = Number(process.argv[3] ?? 500);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const headers = { authorization: 'Bearer sk_test_bench', 'clerk-api-version': '2025-11-10' };

const get = (path) => new Promise((resolve, reject) => {
    http.get(base + path, { agent, headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    }).on('error', reject);
});

const USER = Buffer.from('"object":"user"'), ID = Buffer.from('{"id":"user_');
function scan(body) {   // -> [users on the page, id of the last one]
    let n = 0;
    for (let at = body.indexOf(USER); at >= 0; at = body.indexOf(USER, at + 1)) n++;
    const last = body.lastIndexOf(ID);
    return [n, last < 0 ? null : body.toString('latin1', last + 7, last + 7 + 32)];
}

let t = Date.now();
const count = await get('/v1/users/count');
console.log(`count: ${count.body} (first request, builds the dataset: ${Date.now() - t} ms)`);
t = Date.now();
let users = 0, bytes = 0, pages = 0, cursor = null;
for (;;) {
    const r = await get(`/v1/users?order_by=%2Bcreated_at&limit=${limit}${cursor ? `&starting_after=${cursor}` : ''}`);
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
    const [n, last] = scan(r.body);
    users += n; bytes += r.body.length; pages++;
    if (n < limit) break;
    cursor = last;
}
const s = (Date.now() - t) / 1000;
console.log(`${users} users in ${pages} pages, ${(bytes / 1e6).toFixed(0)} MB, ${s.toFixed(1)} s: ` +
    `${Math.round(users / s)} users/s, ${(bytes / 1e6 / s).toFixed(0)} MB/s`);
agent.destroy();
