#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh COMMAND [ARG...]
#
# Runs COMMAND with SQLML_TEST_POSTGRES_URI pointing at a PostgreSQL server.
# - If SQLML_TEST_POSTGRES_URI is already set (a developer's own server), COMMAND is
#   run unchanged.
# - Otherwise a private, throwaway server is started in a temporary directory on a
#   free port of 127.0.0.1, and always stopped and deleted when COMMAND ends. The
#   exit status is COMMAND's.
# - If no server binaries are found: with CI=true this fails; otherwise it warns and
#   runs COMMAND without the URI (PostgreSQL tests are then skipped).
#
# Binaries: $PG_BINDIR if set (must contain initdb, pg_ctl and postgres), else
# `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, else initdb on PATH.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

if [[ -n "${SQLML_TEST_POSTGRES_URI:-}" ]]; then
    exec "$@"
fi

log() { echo "with-postgres: $*" >&2; }

has_server_binaries() {
    [[ -n "$1" && -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]
}

find_bindir() {
    local dir
    if [[ -n "${PG_BINDIR+set}" ]]; then
        # An explicit choice is never second-guessed.
        if has_server_binaries "$PG_BINDIR"; then echo "$PG_BINDIR"; fi
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if has_server_binaries "$dir"; then echo "$dir"; return; fi
    fi
    dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    if has_server_binaries "$dir"; then echo "$dir"; return; fi
    if command -v initdb >/dev/null 2>&1; then
        dir="$(dirname "$(command -v initdb)")"
        if has_server_binaries "$dir"; then echo "$dir"; return; fi
    fi
    return 0
}

bindir="$(find_bindir)"
if [[ -z "$bindir" ]]; then
    if [[ "${CI:-}" == "true" ]]; then
        log "ERROR: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found" \
            "(looked at \$PG_BINDIR, pg_config --bindir, /usr/lib/postgresql/*/bin, PATH)."
        log "CI must run the PostgreSQL tests: install the PostgreSQL server" \
            "or set SQLML_TEST_POSTGRES_URI."
        exit 1
    fi
    log "WARNING: no PostgreSQL server binaries found; PostgreSQL tests will be SKIPPED."
    log "Install the PostgreSQL server, set PG_BINDIR, or set SQLML_TEST_POSTGRES_URI."
    exec "$@"
fi

tmpdir="$(mktemp -d "${TMPDIR:-/tmp}/sqlml-pg.XXXXXXXX")"
datadir="$tmpdir/data"
logfile="$tmpdir/postgres.log"
started=0

# As root, the server must run as the `postgres` user; otherwise as ourselves.
if [[ "$(id -u)" -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        log "ERROR: running as root but there is no 'postgres' user to run the server as."
        rm -rf "$tmpdir"
        exit 1
    fi
    chown postgres: "$tmpdir"
    if command -v runuser >/dev/null 2>&1; then
        as_pg() { (cd "$tmpdir" && runuser -u postgres -- "$@"); }
    else
        as_pg() { (cd "$tmpdir" && su -s /bin/sh postgres -c 'exec "$0" "$@"' -- "$@"); }
    fi
else
    as_pg() { (cd "$tmpdir" && "$@"); }
fi

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ "$started" -eq 1 ]]; then
        as_pg "$bindir/pg_ctl" -D "$datadir" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$bindir/pg_ctl" -D "$datadir" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            log "WARNING: could not stop the PostgreSQL server in $datadir"
    fi
    rm -rf "$tmpdir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! as_pg "$bindir/initdb" -D "$datadir" -A trust -U postgres --no-sync -E UTF8 --no-locale \
    >"$tmpdir/initdb.log" 2>&1; then
    log "ERROR: initdb failed:"
    cat "$tmpdir/initdb.log" >&2
    exit 1
fi

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The port may be taken between picking and binding it, so retry a few times.
for attempt in 1 2 3; do
    port="$(free_port)"
    if as_pg "$bindir/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 start -o \
        "-h 127.0.0.1 -p $port -k '$tmpdir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null 2>&1; then
        started=1
        break
    fi
    # pg_ctl may have timed out with the server still coming up: stop it before retrying.
    as_pg "$bindir/pg_ctl" -D "$datadir" -m immediate -w stop >/dev/null 2>&1 || true
done

if [[ "$started" -ne 1 ]]; then
    log "ERROR: the PostgreSQL server failed to start; its log:"
    cat "$logfile" >&2 || true
    exit 1
fi

export SQLML_TEST_POSTGRES_URI="postgresql://postgres@127.0.0.1:$port/postgres"
log "$("$bindir/postgres" --version) running at $SQLML_TEST_POSTGRES_URI"

set +e
"$@"
status=$?
set -e
exit "$status"
