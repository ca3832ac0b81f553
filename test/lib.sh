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

