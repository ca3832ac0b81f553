# Shell helpers shared by the test runner, the quickstart and the benchmarks.
# PostgreSQL refuses to run as root, so as root every server command runs as the "postgres" OS user
# (created by Debian's postgresql package); any other user runs them as itself.

PG_BINDIR=$(pg_config --bindir)

# run_pg CMD...: runs a command as the OS user that owns the test clusters.
run_pg() {
    if [ "$(id -u)" = 0 ]; then
        # from a directory that user can enter (a checkout under /root is not one)
        (cd / && runuser -u postgres -- env PATH="$PG_BINDIR:$PATH" "$@")
    else
        env PATH="$PG_BINDIR:$PATH" "$@"
    fi
}

# new_pg_dir: a fresh temporary directory writable by that user.
new_pg_dir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/clerk_sync.XXXXXX")
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 755 "$dir"
    echo "$dir"
}

# cluster_start DIR PORT [CONFIG_LINE...]: a throwaway cluster in DIR/data listening on localhost
# and on a socket in DIR, with clerk_sync preloaded; extra lines are appended to its config.
cluster_start() {
    local dir=$1 port=$2
    shift 2
    run_pg initdb -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log"; return 1; }
    {
        echo "port = $port"
        echo "listen_addresses = 'localhost'"
        echo "unix_socket_directories = '$dir'"
        echo "shared_preload_libraries = 'clerk_sync'"
        echo "fsync = off"
        for line in "$@"; do echo "$line"; done
    } | run_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    run_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log"; return 1; }
}

# use_throwaway_dir: sets `dir` to a new directory for a throwaway cluster; on exit (and on INT or
# TERM) the cluster, and the fake Clerk if one was started, are stopped and the directory removed.
# Scripts that use it set `port`, which psql_q and pgbench_run below connect to.
use_throwaway_dir() {
    dir=$(new_pg_dir)
    trap 'fake_clerk_stop; cluster_stop "$dir"; rm -rf "$dir"' EXIT
    trap 'exit 130' INT TERM
}
psql_q() { run_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres "$@"; }
pgbench_run() { run_pg pgbench -n -h "$dir" -p "$port" -U postgres "$@" postgres; }

# cluster_stop DIR: stops the cluster (if running); the caller removes DIR.
cluster_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && run_pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1
    return 0
}

# svix_headers SECRET MSG_ID BODY: the JSON headers object of a delivery of BODY signed now with
# SECRET (whsec_...), as an edge function passes them to clerk_apply_event. Uses openssl(1).
svix_headers() {
    local secret=$1 id=$2 body=$3 ts key sig
    ts=$(date +%s)
    key=$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
    printf '{"svix-id": "%s", "svix-timestamp": "%s", "svix-signature": "v1,%s"}' "$id" "$ts" "$sig"
}


# fake_clerk_start PORT [ARGS...]: starts the fake Clerk API (test/fake_clerk) in the background,
# waits until it listens, and sets FAKE_CLERK_PID.
fake_clerk_start() {
    local port=$1 log
    shift
    log=$(mktemp)
    node "$(dirname "${BASH_SOURCE[0]}")/fake_clerk/server.mjs" --port "$port" "$@" >"$log" 2>&1 &
    FAKE_CLERK_PID=$!
    for _ in $(seq 1 100); do
        grep -q listening "$log" && { rm -f "$log"; return 0; }
        kill -0 "$FAKE_CLERK_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log"; rm -f "$log"
    echo "the fake Clerk API did not start on port $port" >&2
    return 1
}

fake_clerk_stop() {
    [ -n "${FAKE_CLERK_PID:-}" ] && kill "$FAKE_CLERK_PID" 2>/dev/null && wait "$FAKE_CLERK_PID" 2>/dev/null
    FAKE_CLERK_PID=
    return 0
}

# fake_clerk_dump URL: every user the fake serves at URL (a /v1 base), as one JSON array.
fake_clerk_dump() {
    node --input-type=module -e '
        const base = process.argv[1], all = [];
        for (let offset = 0; ; offset += 500) {
            const r = await fetch(`${base}/users?order_by=%2Bcreated_at&limit=500&offset=${offset}`,
                                  { headers: { authorization: "Bearer sk_test_dump" } });
            if (!r.ok) throw new Error(`HTTP ${r.status}`);
            const page = await r.json();
            all.push(...page);
            if (page.length < 500) break;
        }
        process.stdout.write(JSON.stringify(all));' "$1"
}

# TAP-style results for the scripted suites (the caller starts with passed=0 failed=0).
ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && sed 's/^/    /' <<<"$2"; return 0; }
# check DESCRIPTION EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2"$'\n'"actual:   $3"; fi; }

# fake_clerk_stat BASE FIELD [CURL_ARGS...]: one figure from the fake Clerk's /__admin/stats at
# BASE (its origin), by a dotted path such as connections or by_status.429; 0 when absent.
fake_clerk_stat() {
    local base=$1 field=$2
    shift 2
    curl -s "$@" "$base/__admin/stats" | node -e '
        let s = "";
        process.stdin.on("data", (d) => (s += d)).on("end", () => {
            let v = JSON.parse(s);
            for (const k of process.argv[1].split(".")) v = v?.[k];
            console.log(v ?? 0);
        });' "$field"
}

# median: the median of the numbers read one per line (or space-separated) on standard input.
median() {
    tr ' ' '\n' | grep -v '^$' | sort -g |
        awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
