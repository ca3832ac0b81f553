// Deterministic Clerk user datasets for the fake Clerk Backend API (see server.mjs, README.md).
//
// A dataset is fully determined by (users N, seed S, delete K). User number `gi` (0 = oldest,
// N-1 = newest) is generated on demand from (S, gi) alone, so a 1,000,000-user dataset costs only
// a small index in memory (id + created_at per user); the full User objects are built, serialised
// and (within a memory budget) cached when they are first served.
//
// Hard cases are placed by rules on gi (documented in README.md, "Dataset rules"):
//   gi % 17 == 5   phone-only user: email_addresses [] and primary_email_address_id null
//   gi % 13 == 3   two or three email addresses, the primary one is NOT the first entry
//   gi % 11 == 2   unicode names (Zoë, Łukasz, 山田 太郎, emoji, apostrophes, RTL, ...)
//   gi % 19 == 4   first_name null;  gi % 23 == 6  last_name null;  gi % 7 == 1  username null
//   gi % 10 == 1   public_metadata.tier "PRO"      gi % 20 == 3   "MAXX"
//   gi % 50 == 7   "ENTERPRISE"                    gi % 100 == 9  "gold" (a tier nobody knows)
//                  (every other user has no tier key at all)
//   gi % 997 == 500 and gi < 19940: ~50 KB public_metadata (at most 20 such users)
//   gi % 29 == 8   updated_at 200..400 days after created_at (others: within 3 days)
//   every block of 20 users (gi = 20b .. 20b+19) starts with a group of 3..7 users sharing the
//                  exact same created_at: cursor paging must tie-break on the id
//   gi % 6 == 0    signed up with Google: an external account, the primary email linked_to it
//   gi % 211 == 100  image_url null (REFERENCE.md: "may be null", the spec says string)
//   gi % 9 == 4    never signed in (last_sign_in_at and last_active_at null)
//   gi % 101 == 50 banned;   gi % 103 == 51 locked;   gi % 8 == 3  external_id set
// `delete=K` drops every K-th user: the ones with (gi + 1) % K == 0.
//
// Order: the dataset keeps its users sorted by (created_at, id), ids compared byte-wise (ASCII);
// "-created_at" is exactly the reverse. Every other order_by sorts by (field, id) with nulls last
// ascending (first descending, as PostgreSQL does), descending being the exact reverse too.

export const ORDER_FIELDS = ['created_at', 'updated_at', 'email_address', 'web3wallet', 'first_name',
    'last_name', 'phone_number', 'username', 'last_active_at', 'last_sign_in_at'];

const T0 = Date.UTC(2023, 0, 1);   // created_at of user 0
const STEP = 30_000;               // ms between consecutive sign-ups (1M users span ~347 days)
const DAY = 86_400_000;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const B62 = Array.from(BASE62, (c) => c.charCodeAt(0));

// ---- small deterministic hashing / PRNG ----------------------------------------------------------

// A 32-bit integer hash (the "lowbias32" finaliser): good avalanche, cheap.
function mix32(x) {
    x = (x ^ (x >>> 16)) >>> 0;
    x = Math.imul(x, 0x7feb352d);
    x = (x ^ (x >>> 15)) >>> 0;
    x = Math.imul(x, 0x846ca68b);
    return (x ^ (x >>> 16)) >>> 0;
}

// mulberry32: a tiny PRNG; one stream per user, seeded from (dataset seed, gi).
function rngFor(seedHash, gi, salt = 0) {
    let a = mix32((Math.imul(gi, 0x9e3779b1) ^ seedHash ^ Math.imul(salt, 0x85ebca77)) >>> 0);
    const next = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0);
    };
    return {
        u32: next,
        int: (n) => next() % n,                       // 0 .. n-1 (n small: bias irrelevant here)
        pick: (arr) => arr[next() % arr.length],
        chars: (n) => { const c = new Array(n); for (let k = 0; k < n; k++) c[k] = B62[next() % 62]; return String.fromCharCode.apply(null, c); },
        digits: (n) => { const c = new Array(n); for (let k = 0; k < n; k++) c[k] = 48 + next() % 10; return String.fromCharCode.apply(null, c); },
    };
}

// ---- ids -------------------------------------------------------------------------------------------
// A Clerk id is a prefix and 27 base62 characters. Ours are '2' + 14 random + 6 that encode gi
// through a seed-keyed bijection of uint32 + 6 random: unique within a dataset by construction,
// and decodable, so a user id can be located without a 1M-entry Map.

const MUL = 0x2c1b3c6d;                 // odd, hence invertible modulo 2^32
const MUL_INV = (() => {                 // Newton's iteration for the inverse modulo 2^32
    let inv = MUL;
    for (let k = 0; k < 5; k++) inv = Math.imul(inv, (2 - Math.imul(MUL, inv)) >>> 0) >>> 0;
    return inv >>> 0;
})();
// uint32 -> uint32 bijection keyed by `key`: xor, multiply by an odd constant, xor.
const scramble = (gi, key) => ((Math.imul((gi ^ key) >>> 0, MUL) ^ mix32(key + 1)) >>> 0);
const unscramble = (v, key) => ((Math.imul((v ^ mix32(key + 1)) >>> 0, MUL_INV) ^ key) >>> 0);

// Built as one flat string (a chain of concatenations would keep a rope per id: ~1 KB each),
// with the PRNG inlined: ids are made a million times when a large dataset is built.
const ID_CODES = { 4: new Array(31), 5: new Array(32) };
function makeId(prefix, seedHash, gi, salt) {
    let a = mix32((Math.imul(gi, 0x9e3779b1) ^ seedHash ^ Math.imul(salt, 0x85ebca77)) >>> 0);  // as rngFor
    const c = ID_CODES[prefix.length];
    let k = 0;
    for (; k < prefix.length; k++) c[k] = prefix.charCodeAt(k);
    c[k++] = 50;                                          // '2'
    for (let j = 0; j < 20; j++) {                        // 14 random, 6 for gi, 6 random
        if (j === 14) {
            let v = scramble(gi, (seedHash ^ salt) >>> 0);
            for (let i = 5; i >= 0; i--) { c[k + i] = B62[v % 62]; v = Math.floor(v / 62); }
            k += 6;
        }
        a = (a + 0x6d2b79f5) >>> 0;                       // mulberry32, as in rngFor
        let t = Math.imul(a ^ (a >>> 15), a | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        c[k++] = B62[((t ^ (t >>> 14)) >>> 0) % 62];
    }
    return String.fromCharCode.apply(null, c);
}

// gi encoded in a user id, or -1.
function decodeUserGi(id, seedHash) {
    if (typeof id !== 'string' || id.length !== 32 || !id.startsWith('user_')) return -1;
    let v = 0;
    for (let k = 20; k < 26; k++) {
        const c = BASE62.indexOf(id[k]);
        if (c < 0) return -1;
        v = v * 62 + c;
    }
    if (v > 0xffffffff) return -1;
    return unscramble(v, seedHash);
}

// ---- name lists ------------------------------------------------------------------------------------

const FIRST = ['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda', 'David',
    'Elizabeth', 'William', 'Barbara', 'Richard', 'Susan', 'Joseph', 'Jessica', 'Thomas', 'Sarah', 'Priya',
    'Arjun', 'Wei', 'Mei', 'Ahmed', 'Fatima', 'Olu', 'Chidi', 'Lucas', 'Sofia', 'Mateo', 'Emma', 'Noah',
    'Olivia', 'Liam', 'Ava', 'Kenji', 'Yuki', 'Ivan', 'Anya', 'Diego', 'Camila'];
const LAST = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez',
    'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore',
    'Jackson', 'Martin', 'Lee', 'Patel', 'Sharma', 'Chen', 'Wang', 'Kim', 'Nguyen', 'Okafor', 'Adeyemi',
    'Silva', 'Santos', 'Rossi', 'Müller', 'Schmidt', 'Tanaka', 'Sato', 'Ivanov', 'Kowalski', 'Dubois', 'Khan'];
// [first, last, ascii-ish local part for the email]
const UNICODE_NAMES = [
    ['Zoë', 'Saldaña', 'zoe.saldana'], ['Łukasz', 'Wiśniewski', 'lukasz.w'], ['太郎', '山田', 'taro.yamada'],
    ['Björk', 'Guðmundsdóttir', 'bjork.g'], ['Renée', "O'Connor", 'renee.oconnor'],
    ['Σωκράτης', 'Παπαδόπουλος', 'sokratis.p'], ['Владимир', 'Набоков', 'vladimir.n'],
    ['محمد', 'الأحمد', 'mohammed.a'], ['🦄 Unicorn', '🚀', 'unicorn'], ['Zoë 🌈', 'Ñúñez', 'zoe.nunez'],
    ['François-Xavier', "de la Tour d'Auvergne", 'fx.delatour'], ['Antonín', 'Dvořák', 'antonin.dvorak'],
    ['Jürgen', 'Groß', 'juergen.gross'], ['Nguyễn', 'Thị Minh Khai', 'minh.khai'], ['지민', '박', 'jimin.park'],
    ['Ólafur', 'Þórðarson', 'olafur.t'], ['Siân', 'Ap Rhys', 'sian.aprhys'], ['Ashwin', 'अग्रवाल', 'ashwin.a'],
];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.test', 'corp.example', 'uni.example.edu'];
const ORGS = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Tyrell'];

// ---- the deterministic generator ---------------------------------------------------------------------

// created_at of user gi: strictly increasing except inside the tie group that opens each block of 20.
export function createdAtOf(seedHash, gi) {
    const block = Math.floor(gi / 20), first = block * 20;
    const groupSize = 3 + (mix32((block ^ seedHash) >>> 0) % 5);       // 3..7
    const j = (gi - first < groupSize) ? first : gi;
    return T0 + j * STEP + (mix32((Math.imul(j, 0x27d4eb2d) ^ seedHash) >>> 0) % STEP);
}

function tierOf(gi) {
    if (gi % 10 === 1) return 'PRO';
    if (gi % 20 === 3) return 'MAXX';
    if (gi % 50 === 7) return 'ENTERPRISE';
    if (gi % 100 === 9) return 'gold';
    return undefined;
}

function verificationOtp(strategy, createdAt, status = 'verified', channel) {
    const v = { object: 'verification_otp', status, strategy, attempts: status === 'verified' ? 1 : 0,
        expire_at: createdAt + 600_000 };
    if (channel) v.channel = channel;
    return v;
}

// A ~50 KB public_metadata: a realistic "app state dump" nobody should store column by column.
function largeMetadata(r, tier) {
    const m = {};
    if (tier) m.tier = tier;
    m.onboarding = { completed: true, steps: ['profile', 'team', 'billing', 'integrations'] };
    m.history = [];
    for (let k = 0; k < 300; k++) {
        m.history.push({ at: T0 + k * DAY, event: r.pick(['login', 'upgrade', 'export', 'invite', 'comment']),
            note: `entry ${k}: ${r.chars(80)}` });
    }
    return m;
}

function imageUrl(r, uploaded) {
    // Clerk's image URLs are img.clerk.com + a base64url JSON blob.
    const blob = Buffer.from(JSON.stringify({ type: uploaded ? 'proxy' : 'default',
        src: uploaded ? `https://images.clerk.dev/uploaded/img_${r.chars(27)}` : `${r.chars(20)}` })).toString('base64url');
    return `https://img.clerk.com/${blob}`;
}

// The full Clerk User object for user gi of the dataset seeded by seedHash.
export function generateUser(seedHash, gi) {
    const r = rngFor(seedHash, gi, 1);
    const id = makeId('user_', seedHash, gi, 0);
    const createdAt = createdAtOf(seedHash, gi);
    const updatedAt = createdAt + (gi % 29 === 8
        ? (200 + r.int(201)) * DAY + r.int(DAY)
        : r.int(3 * DAY));

    // names
    let first, last, local;
    if (gi % 11 === 2) {
        [first, last, local] = UNICODE_NAMES[r.int(UNICODE_NAMES.length)];
    } else {
        first = r.pick(FIRST); last = r.pick(LAST);
        local = `${first}.${last}`.toLowerCase().replace(/ü/g, 'ue');
    }
    if (gi % 19 === 4) first = null;
    if (gi % 23 === 6) last = null;
    const username = gi % 7 === 1 ? null : `${local.replace(/[^a-z0-9]/g, '_')}_${gi}`;

    // external account (Google sign-up) and identifications
    const idn = (k) => makeId('idn_', seedHash, gi, 10 + k);
    const google = gi % 6 === 0 && gi % 17 !== 5;
    const googleIdn = google ? idn(9) : null;

    const emails = [];
    let primaryEmailId = null;
    if (gi % 17 !== 5) {
        const count = gi % 13 === 3 ? 2 + (gi % 2) : 1;
        const primaryIdx = count === 1 ? 0 : 1 + r.int(count - 1);   // never the first when count > 1
        for (let k = 0; k < count; k++) {
            const isPrimary = k === primaryIdx;
            const address = isPrimary
                ? `${local}.${gi}@${DOMAINS[gi % DOMAINS.length]}`
                : `${local}.${gi}.${k === 0 ? 'old' : 'alt'}@${DOMAINS[(gi + k + 1) % DOMAINS.length]}`;
            const linked = isPrimary && google;
            const e = {
                id: idn(k), object: 'email_address', email_address: address, reserved: false,
                verification: linked
                    ? { object: 'verification_from_oauth', status: 'verified', strategy: 'from_oauth_google',
                        attempts: null, expire_at: null }
                    : verificationOtp('email_code', createdAt, isPrimary || k === 0 ? 'verified' : 'unverified'),
                linked_to: linked ? [{ type: 'oauth_google', id: googleIdn }] : [],
                matches_sso_connection: false,
                created_at: createdAt + k * 1000, updated_at: createdAt + k * 1000,
            };
            emails.push(e);
            if (isPrimary) primaryEmailId = e.id;
        }
    }

    const phones = [];
    let primaryPhoneId = null;
    if (gi % 17 === 5 || gi % 5 === 0) {
        const p = {
            id: idn(5), object: 'phone_number',
            phone_number: `+1555${String(gi).padStart(7, '0')}`,
            reserved_for_second_factor: false, default_second_factor: false, reserved: false,
            verification: verificationOtp('phone_code', createdAt, 'verified', 'sms'),
            linked_to: [], backup_codes: null, created_at: createdAt, updated_at: createdAt,
        };
        phones.push(p);
        primaryPhoneId = p.id;
    }

    const externalAccounts = [];
    if (google) {
        const primary = emails.find((e) => e.id === primaryEmailId);
        externalAccounts.push({
            object: 'external_account', id: makeId('eac_', seedHash, gi, 20), provider: 'oauth_google',
            identification_id: googleIdn, provider_user_id: `1${r.digits(20)}`,
            approved_scopes: 'email https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid profile',
            email_address: primary.email_address, email_address_verified: true,
            first_name: first ?? '', last_name: last ?? '',
            avatar_url: `https://lh3.googleusercontent.com/a/${r.chars(40)}=s96-c`,
            image_url: `https://lh3.googleusercontent.com/a/${r.chars(40)}=s1000-c`,
            username: null, phone_number: null, public_metadata: {}, label: null,
            created_at: createdAt, updated_at: createdAt,
            verification: { object: 'verification_oauth', status: 'verified', strategy: 'oauth_google',
                attempts: null, expire_at: createdAt + 600_000 },
        });
    }

    // metadata
    const tier = tierOf(gi);
    let publicMetadata;
    if (gi % 997 === 500 && gi < 997 * 20) publicMetadata = largeMetadata(r, tier);
    else {
        publicMetadata = {};
        if (tier !== undefined) publicMetadata.tier = tier;
        if (gi % 4 === 0) publicMetadata.onboarded = true;
        if (gi % 12 === 5) publicMetadata.org = { name: ORGS[gi % ORGS.length], role: r.pick(['admin', 'member']) };
    }
    const privateMetadata = gi % 9 === 2 ? { stripe_customer_id: `cus_${r.chars(14)}` } : {};
    const unsafeMetadata = gi % 15 === 7 ? { theme: r.pick(['dark', 'light']), newsletter: true } : {};

    const signedIn = gi % 9 !== 4;
    const lastSignIn = signedIn ? createdAt + Math.floor((updatedAt - createdAt) * ((r.u32() % 1000) / 1000)) : null;
    const mfa = gi % 25 === 0;
    const hasImage = gi % 3 === 0;
    const img = gi % 211 === 100 ? null : imageUrl(r, hasImage);
    const locked = gi % 103 === 51;

    return {
        id, object: 'user',
        username, first_name: first, last_name: last,
        image_url: img, has_image: hasImage && img !== null,
        primary_email_address_id: primaryEmailId,
        primary_phone_number_id: primaryPhoneId,
        primary_web3_wallet_id: null,
        password_enabled: !google,
        two_factor_enabled: mfa, totp_enabled: mfa, backup_code_enabled: mfa,
        email_addresses: emails, phone_numbers: phones, web3_wallets: [], passkeys: [],
        external_accounts: externalAccounts, saml_accounts: [], enterprise_accounts: [],
        public_metadata: publicMetadata, private_metadata: privateMetadata, unsafe_metadata: unsafeMetadata,
        external_id: gi % 8 === 3 ? `ext_${gi}` : null,
        last_sign_in_at: lastSignIn,
        banned: gi % 101 === 50, locked, deprovisioned: false,
        lockout_expires_in_seconds: locked ? 1800 : null,
        verification_attempts_remaining: 100,
        created_at: createdAt, updated_at: updatedAt,
        delete_self_enabled: true, create_organization_enabled: true, create_organizations_limit: null,
        last_active_at: lastSignIn === null ? null : Math.floor(lastSignIn / DAY) * DAY,
        mfa_enabled_at: mfa ? createdAt + DAY : null, mfa_disabled_at: null,
        legal_accepted_at: gi % 3 === 1 ? createdAt : null,
        password_last_updated_at: google ? null : createdAt,
        profile_image_url: img ?? '',
        locale: gi % 10 === 4 ? 'en-US' : null,
        bypass_client_trust: false,
    };
}

// ---- cache of serialised users (shared by all datasets) ---------------------------------------------
// Users are kept as UTF-8 Buffers (outside the JS heap: no GC cost), each served page being one
// Buffer.concat of them. Building pages as one big JS string and encoding it afterwards was
// several times slower.

let cacheBudget = 512 * 1024 * 1024;    // bytes of serialised users kept, across datasets
export function setCacheBudget(bytes) { cacheBudget = bytes; }

// ---- the dataset -----------------------------------------------------------------------------------

const cmpKey = (aCa, aId, bCa, bId) => (aCa - bCa) || (aId < bId ? -1 : aId > bId ? 1 : 0);

export class Dataset {
    constructor(users, seed, deleteEvery = 0) {
        this.n = users;
        this.seed = seed;
        this.deleteEvery = deleteEvery;
        this.seedHash = mix32((seed * 0x9e3779b1 + 0x632be5ab) >>> 0);
        this.version = 0;            // bumped by each mutation: invalidates the order caches
        this.extras = new Map();     // id -> row, for every row whose user is not the generated one
        this.tombstones = new Map(); // id -> created_at of users deleted through the admin API
        this.orderCache = new Map(); // field -> { version, rows sorted ascending by (field, id) }
        this.nextNew = 0;            // counter for users created through the admin API
        this.cached = 0;             // bytes of this dataset's users in the cache
        const t = Date.now();
        this.rows = this.#build();
        this.buildMs = Date.now() - t;
    }

    // One row per user, sorted by (created_at, id). `gi` >= 0 for generated users; `user` holds
    // an admin-supplied object (then `gi` may be -1); `buf` caches the serialised user.
    #build() {
        const rows = [];
        for (let gi = 0; gi < this.n; gi++) {
            if (this.deleteEvery > 0 && (gi + 1) % this.deleteEvery === 0) continue;
            rows.push({ id: makeId('user_', this.seedHash, gi, 0), ca: createdAtOf(this.seedHash, gi), gi,
                user: null, buf: null });
        }
        // created_at is non-decreasing in gi: only runs of equal created_at need sorting (by id).
        for (let s = 0; s < rows.length;) {
            let e = s + 1;
            while (e < rows.length && rows[e].ca === rows[s].ca) e++;
            if (e - s > 1) {
                const run = rows.slice(s, e).sort((a, b) => (a.id < b.id ? -1 : 1));
                for (let k = s; k < e; k++) rows[k] = run[k - s];
            }
            s = e;
        }
        return rows;
    }

    get size() { return this.rows.length; }

    userOf(row) { return row.user ?? generateUser(this.seedHash, row.gi); }

    // The user as JSON (UTF-8 bytes).
    bufOf(row) {
        if (row.buf !== null) return row.buf;
        const b = Buffer.from(JSON.stringify(this.userOf(row)));
        if (cacheBudget >= b.length) { cacheBudget -= b.length; this.cached += b.length; row.buf = b; }
        return b;
    }

    // Several users as one JSON array, encoded straight into one Buffer (no per-user Buffer and
    // no second copy for users that are not cached).
    page(rows) {
        let cap = 1024 + rows.length * 4096, out = Buffer.allocUnsafe(cap), off = 0;
        const ensure = (need) => {
            if (off + need <= cap) return;
            cap = Math.max(cap * 2, off + need);
            const bigger = Buffer.allocUnsafe(cap);
            out.copy(bigger, 0, 0, off);
            out = bigger;
        };
        out[off++] = 0x5b;                                  // [
        for (let k = 0; k < rows.length; k++) {
            const row = rows[k];
            if (k) { ensure(1); out[off++] = 0x2c; }        // ,
            if (row.buf !== null) {
                ensure(row.buf.length);
                off += row.buf.copy(out, off);
                continue;
            }
            const json = JSON.stringify(this.userOf(row));
            ensure(json.length * 3);                        // UTF-8 needs at most 3 bytes per UTF-16 unit
            const n = out.write(json, off);
            if (cacheBudget >= n) {
                cacheBudget -= n; this.cached += n;
                row.buf = Buffer.from(out.subarray(off, off + n));
            }
            off += n;
        }
        ensure(1);
        out[off++] = 0x5d;                                  // ]
        return out.subarray(0, off);
    }

    #uncache(row) {
        if (row.buf !== null) { cacheBudget += row.buf.length; this.cached -= row.buf.length; row.buf = null; }
    }

    // Gives this dataset's cache back (when the dataset is forgotten).
    release() { cacheBudget += this.cached; this.cached = 0; }

    // Lower bound: the first index whose (ca, id) >= (ca, id) in `rows` (sorted by created_at).
    static lowerBound(rows, ca, id) {
        let lo = 0, hi = rows.length;
        while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            if (cmpKey(rows[mid].ca, rows[mid].id, ca, id) < 0) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    // created_at of a user id this dataset knows or knew (deleted ones included), or undefined.
    createdAtOfId(id) {
        const x = this.extras.get(id);
        if (x) return x.ca;
        if (this.tombstones.has(id)) return this.tombstones.get(id);
        const gi = decodeUserGi(id, this.seedHash);
        if (gi < 0 || gi >= this.n || makeId('user_', this.seedHash, gi, 0) !== id) return undefined;
        return createdAtOf(this.seedHash, gi);
    }

    // The live row of a user id, or null.
    findRow(id) {
        const x = this.extras.get(id);
        if (x) return x;
        const ca = this.createdAtOfId(id);
        if (ca === undefined) return null;
        const k = Dataset.lowerBound(this.rows, ca, id);
        return k < this.rows.length && this.rows[k].id === id ? this.rows[k] : null;
    }

    // Rows sorted ascending by (field, id) for a field other than created_at; cached per version.
    sortedBy(field) {
        if (field === 'created_at') return this.rows;
        const c = this.orderCache.get(field);
        if (c && c.version === this.version) return c.rows;
        const keyOf = {
            updated_at: (u) => u.updated_at,
            email_address: (u) => u.email_addresses.find((e) => e.id === u.primary_email_address_id)?.email_address ?? null,
            web3wallet: () => null,
            first_name: (u) => u.first_name,
            last_name: (u) => u.last_name,
            phone_number: (u) => u.phone_numbers.find((p) => p.id === u.primary_phone_number_id)?.phone_number ?? null,
            username: (u) => u.username,
            last_active_at: (u) => u.last_active_at,
            last_sign_in_at: (u) => u.last_sign_in_at,
        }[field];
        const keyed = this.rows.map((row) => ({ row, k: keyOf(this.userOf(row)) ?? null }));
        keyed.sort((a, b) => {
            if (a.k !== b.k) {
                if (a.k === null) return 1;            // nulls last when ascending
                if (b.k === null) return -1;
                return a.k < b.k ? -1 : 1;
            }
            return a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0;
        });
        const rows = keyed.map((x) => x.row);
        this.orderCache.set(field, { version: this.version, rows });
        return rows;
    }

    // ---- mutations (admin API) ----

    #insert(row) {
        const k = Dataset.lowerBound(this.rows, row.ca, row.id);
        this.rows.splice(k, 0, row);
    }

    #remove(row) {
        const k = Dataset.lowerBound(this.rows, row.ca, row.id);
        if (this.rows[k] === row) this.rows.splice(k, 1);
    }

    // Merges `patch` into the user with patch.id (or creates a new user). Without an explicit
    // updated_at in the patch, updated_at becomes now (strictly later than before).
    upsert(patch, now = Date.now()) {
        this.version++;
        const row = patch.id ? this.findRow(patch.id) : null;
        if (row) {
            const before = this.userOf(row);
            const user = { ...before, ...patch };
            if (patch.updated_at === undefined) user.updated_at = Math.max(now, before.updated_at + 1);
            this.#uncache(row);
            if (user.created_at !== row.ca) { this.#remove(row); row.ca = user.created_at; this.#insert(row); }
            row.user = user;
            this.extras.set(row.id, row);
            return user;
        }
        // a new user: a generated template (index beyond the dataset) overlaid with the patch
        const gi = this.n + this.nextNew++;
        const template = generateUser(this.seedHash, gi);
        const createdAt = patch.created_at ?? now;
        const user = { ...template, ...patch, created_at: createdAt };
        if (patch.updated_at === undefined) user.updated_at = createdAt;
        this.tombstones.delete(user.id);
        const newRow = { id: user.id, ca: createdAt, gi: -1, user, buf: null };
        this.#insert(newRow);
        this.extras.set(user.id, newRow);
        return user;
    }

    // Deletes a user; true if it existed. Its id stays usable as a starting_after cursor.
    delete(id) {
        const row = this.findRow(id);
        if (!row) return false;
        this.version++;
        this.#uncache(row);
        this.#remove(row);
        this.extras.delete(id);
        this.tombstones.set(id, row.ca);
        return true;
    }
}
