#!/usr/bin/env bash
# A private PostgreSQL cluster for the local distributed stack (Debian's packages, no Docker).
#
#   deploy/local/postgres.sh start            install (apt) if missing, initdb once, start, wait for pg_isready
#   deploy/local/postgres.sh stop             fast shutdown; no-op when not running
#   deploy/local/postgres.sh status           exit 0 when up, 1 when not
#   deploy/local/postgres.sh createdb NAME... create each database (owner qunzhu) if missing; starts if needed
#   deploy/local/postgres.sh dropdb NAME...   DROP DATABASE IF EXISTS ... WITH (FORCE)
#
# Listens on 127.0.0.1:$QUNZHU_PG_PORT (5433) only. Role qunzhu / password qunzhu (LOGIN CREATEDB).
# As root the server runs as the `postgres` OS user; otherwise as the current user.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$HERE/env.sh"

PGDIR="$QUNZHU_PG_DIR"
PGDATA="$PGDIR/data"
SOCKDIR="$PGDIR/run"
PGLOG="$PGDIR/postgres.log"
PORT="$QUNZHU_PG_PORT"
START_TIMEOUT="${QUNZHU_PG_START_TIMEOUT:-60}"

if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=postgres
else
    RUN_AS="$(id -un)"
fi

# newest installed server, e.g. /usr/lib/postgresql/15/bin
find_pg_bin() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] || continue
        if [ -z "$best" ] || [ "${d//[!0-9]/}" -gt "${best//[!0-9]/}" ]; then best="$d"; fi
    done
    [ -n "$best" ] && printf '%s\n' "$best"
}

ensure_installed() {
    PGBIN="$(find_pg_bin || true)"
    if [ -z "$PGBIN" ]; then
        [ "$(id -u)" -eq 0 ] || qz_die "PostgreSQL server not found in /usr/lib/postgresql/*/bin (as root: apt-get install postgresql)"
        qz_log "postgres: server not installed, installing Debian's postgresql"
        qz_apt_install postgresql || qz_die "apt-get install postgresql failed"
        PGBIN="$(find_pg_bin || true)"
        [ -n "$PGBIN" ] || qz_die "PostgreSQL server still not found after apt-get install postgresql"
    fi
    [ -x "$PGBIN/psql" ] || qz_die "psql not found in $PGBIN (apt-get install postgresql-client)"
    if [ "$RUN_AS" = postgres ]; then
        id postgres >/dev/null 2>&1 || qz_die "OS user 'postgres' not found (PostgreSQL refuses to run as root)"
        command -v runuser >/dev/null 2>&1 || qz_die "runuser not found (util-linux)"
    fi
}

# run a command as the server's OS user, from a directory that user can enter
as_pg() {
    if [ "$RUN_AS" = postgres ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

pg_running() { [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

# psql as the superuser over the private unix socket; SQL on stdin
admin_psql() {
    as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres "$@"
}

prepare_dirs() {
    mkdir -p "$PGDIR" "$SOCKDIR"
    if [ "$RUN_AS" = postgres ]; then
        chown postgres: "$PGDIR" "$SOCKDIR"
        [ ! -e "$PGLOG" ] || chown postgres: "$PGLOG"
    fi
    chmod 700 "$PGDIR" "$SOCKDIR"
    if [ -d "$PGDATA" ]; then
        local owner
        owner="$(stat -c %U "$PGDATA")"
        [ "$owner" = "$RUN_AS" ] || qz_die "$PGDATA belongs to $owner, not $RUN_AS: set QUNZHU_PG_DIR to another directory"
    fi
}

init_cluster() {
    local major have
    major="$("$PGBIN/postgres" --version | sed -n 's/.* \([0-9][0-9]*\)[.0-9]*.*/\1/p')"
    if [ -f "$PGDATA/PG_VERSION" ]; then
        have="$(cat "$PGDATA/PG_VERSION")"
        [ "$have" = "$major" ] || qz_die "$PGDATA was made by PostgreSQL $have, the server here is $major: remove $PGDIR (or set QUNZHU_PG_DIR)"
        return 0
    fi
    if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
        qz_die "$PGDATA exists but holds no PostgreSQL cluster: remove it (or set QUNZHU_PG_DIR)"
    fi
    qz_log "postgres: initdb $PGDATA (PostgreSQL $major)"
    if ! as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale \
            --auth-local=trust --auth-host=scram-sha-256 >"$PGDIR/initdb.log" 2>&1; then
        cat "$PGDIR/initdb.log" >&2
        qz_die "postgres: initdb failed (output above)"
    fi
    # only our socket (mode 700 dir) and 127.0.0.1 with a password
    as_pg sh -c "cat >'$PGDATA/pg_hba.conf'" <<'EOF'
# Written by deploy/local/postgres.sh
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
EOF
    as_pg sh -c "echo \"include_if_exists = 'qunzhu.conf'\" >>'$PGDATA/postgresql.conf'"
}

write_conf() {
    as_pg sh -c "cat >'$PGDATA/qunzhu.conf'" <<EOF
# Written by deploy/local/postgres.sh on every start: edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 200
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

ensure_role() {
    admin_psql -v "role=$QUNZHU_PG_USER" -v "pw=$QUNZHU_PG_PASSWORD" <<'EOF'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pw')\gexec
EOF
}

cmd_start() {
    local t0=$SECONDS
    ensure_installed
    prepare_dirs
    exec 9>"$PGDIR/.lock"
    flock -w 120 9 || qz_die "postgres: another postgres.sh holds $PGDIR/.lock"
    if pg_running; then
        qz_log "postgres already running on 127.0.0.1:$PORT (data in $PGDATA)"
        return 0
    fi
    qz_port_open 127.0.0.1 "$PORT" && qz_die "postgres: port 127.0.0.1:$PORT is already in use by another process"
    init_cluster
    write_conf
    [ -e "$PGLOG" ] || { : >"$PGLOG"; [ "$RUN_AS" != postgres ] || chown postgres: "$PGLOG"; }
    qz_log "postgres: starting $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $PGDATA)"
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t "$START_TIMEOUT" start >/dev/null 9>&-; then
        qz_log "----- last lines of $PGLOG -----"
        tail -n 30 "$PGLOG" >&2 || true
        qz_die "postgres: failed to start (log above)"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; do
        [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$PGLOG" >&2; qz_die "postgres: not ready after ${START_TIMEOUT}s"; }
        sleep 0.3
    done
    ensure_role
    qz_log "postgres: up on 127.0.0.1:$PORT in $((SECONDS - t0))s (role $QUNZHU_PG_USER)"
}

cmd_stop() {
    PGBIN="$(find_pg_bin || true)"
    if [ -z "$PGBIN" ] || ! pg_running; then
        qz_log "postgres: not running"
        return 0
    fi
    qz_log "postgres: stopping"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null \
        || as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null
    qz_log "postgres: stopped"
}

cmd_status() {
    PGBIN="$(find_pg_bin || true)"
    if [ -n "$PGBIN" ] && pg_running && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        echo "postgres running on 127.0.0.1:$PORT, data in $PGDATA ($QUNZHU_PG_URL_BASE/<db>)"
        return 0
    fi
    echo "postgres: not running"
    return 1
}

check_names() {
    [ "$#" -gt 0 ] || qz_die "no database name given"
    local n
    for n in "$@"; do
        [[ "$n" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || qz_die "invalid database name '$n' (letters, digits, _)"
    done
}

cmd_createdb() {
    check_names "$@"
    ensure_installed
    pg_running || cmd_start
    local n
    for n in "$@"; do
        admin_psql -v "db=$n" -v "role=$QUNZHU_PG_USER" <<'EOF'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
EOF
        qz_log "postgres: database $n ready ($QUNZHU_PG_URL_BASE/$n)"
    done
}

cmd_dropdb() {
    check_names "$@"
    PGBIN="$(find_pg_bin || true)"
    [ -n "$PGBIN" ] && pg_running || { qz_log "postgres: not running, nothing to drop"; return 0; }
    local n
    for n in "$@"; do
        admin_psql -v "db=$n" <<'EOF'
SET client_min_messages = warning;
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db')\gexec
EOF
        qz_log "postgres: database $n dropped"
    done
}

cmd="${1:-}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    createdb) cmd_createdb "$@" ;;
    dropdb) cmd_dropdb "$@" ;;
    *) echo "usage: $0 {start|stop|status|createdb NAME...|dropdb NAME...}" >&2; exit 2 ;;
esac
