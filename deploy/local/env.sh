# shellcheck shell=bash
# Defaults and helpers for the local distributed stack (Kafka + PostgreSQL, no Docker).
#
#   source deploy/local/env.sh
#
# Every variable keeps a value already set in the environment. Sourcing sets no shell options
# (no set -e / -u), so it is safe in an interactive shell too.

# --- repository root: two levels above this file ----------------------------------------------------
QUNZHU_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export QUNZHU_ROOT

# --- where things live ------------------------------------------------------------------------------
if [ -z "${HOME:-}" ]; then
    HOME="$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6)"
    export HOME="${HOME:-/tmp}"
fi
# downloaded jars, outside the repo so fresh clones reuse them
export QUNZHU_CACHE_DIR="${QUNZHU_CACHE_DIR:-$HOME/.cache/qunzhu}"
# runtime data (Kafka log dirs, pid and log files); embedded mode's SQLite files live here too
export QUNZHU_DATA_DIR="${QUNZHU_DATA_DIR:-$QUNZHU_ROOT/data}"

# --- Kafka ------------------------------------------------------------------------------------------
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export QUNZHU_KAFKA_BOOTSTRAP="${QUNZHU_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"

# --- PostgreSQL -------------------------------------------------------------------------------------
# Outside the repo: the server runs as the `postgres` OS user when we are root, and that user can't
# enter a repo cloned under a mode-700 root-owned directory (mktemp -d).
export QUNZHU_PG_DIR="${QUNZHU_PG_DIR:-/var/tmp/qunzhu-pg}"
export QUNZHU_PG_PORT="${QUNZHU_PG_PORT:-5433}"
export QUNZHU_PG_USER="${QUNZHU_PG_USER:-qunzhu}"
export QUNZHU_PG_PASSWORD="${QUNZHU_PG_PASSWORD:-qunzhu}"
# append /<database> to get a service's URL
export QUNZHU_PG_URL_BASE="${QUNZHU_PG_URL_BASE:-postgresql+asyncpg://$QUNZHU_PG_USER:$QUNZHU_PG_PASSWORD@127.0.0.1:$QUNZHU_PG_PORT}"

# --- Python: the repo's venv when there is one ------------------------------------------------------
if [ -z "${QUNZHU_PYTHON:-}" ]; then
    if [ -x "$QUNZHU_ROOT/.venv/bin/python" ]; then
        QUNZHU_PYTHON="$QUNZHU_ROOT/.venv/bin/python"
    else
        QUNZHU_PYTHON="$(command -v python3 || true)"
    fi
fi
export QUNZHU_PYTHON

# --- helpers ----------------------------------------------------------------------------------------
qz_log() { printf '%s\n' "$*" >&2; }
qz_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# qz_port_open HOST PORT -> 0 if something accepts TCP connections there
qz_port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_http URL TIMEOUT_SECONDS -> 0 once URL answers with a 2xx/3xx, 1 (with a message) on timeout
wait_http() {
    local url="$1" timeout="${2:-30}" deadline
    deadline=$(( $(date +%s) + timeout ))
    while :; do
        if command -v curl >/dev/null 2>&1; then
            curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        elif [ -n "${QUNZHU_PYTHON:-}" ]; then
            "$QUNZHU_PYTHON" - "$url" <<'PY' 2>/dev/null && return 0
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status < 400 else 1)
PY
        else
            qz_log "wait_http: neither curl nor python3 found"
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            qz_log "wait_http: $url did not answer within ${timeout}s"
            return 1
        fi
        sleep 0.5
    done
}

# qz_java_major JAVA -> prints the major version (8, 11, 17, 25...) or nothing
qz_java_major() {
    "$1" -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java\.specification\.version = \(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n1
}

# qz_find_java [MIN_MAJOR] -> prints the path of a java >= MIN_MAJOR (default 17), or fails.
# Order: $JAVA_HOME, java on PATH, then /usr/lib/jvm/* (newest-named last wins only if needed).
qz_find_java() {
    local min="${1:-17}" cand major
    for cand in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null || true)" \
                /usr/lib/jvm/*/bin/java; do
        [ -n "$cand" ] && [ -x "$cand" ] || continue
        major="$(qz_java_major "$cand")"
        if [ -n "$major" ] && [ "$major" -ge "$min" ]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    return 1
}

# qz_apt_install PKG... -> apt-get update (once per shell) + install, without starting services
qz_apt_install() {
    [ "$(id -u)" -eq 0 ] || { qz_log "not root: cannot apt-get install $*"; return 1; }
    command -v apt-get >/dev/null 2>&1 || { qz_log "apt-get not found: cannot install $*"; return 1; }
    local rc=0 policy=/usr/sbin/policy-rc.d added=""
    # Debian packages start their daemons on install (postgresql on :5432, prometheus on *:9090);
    # we run our own instances, so keep them from starting.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
    fi
    local aptlog="${TMPDIR:-/tmp}/qunzhu-apt.log"
    : >"$aptlog"
    if [ -z "${_QZ_APT_UPDATED:-}" ]; then
        qz_log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$aptlog" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] && _QZ_APT_UPDATED=1
    fi
    if [ "$rc" -eq 0 ]; then
        qz_log "apt-get install -y $* (output in $aptlog)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
            >>"$aptlog" 2>&1 </dev/null || rc=$?
    fi
    [ -n "$added" ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || { qz_log "----- last lines of $aptlog -----"; tail -n 20 "$aptlog" >&2; }
    return "$rc"
}

# qz_need_go -> Go on PATH (Debian's golang-go installed when missing and root), or exit naming the command
qz_need_go() {
    if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    command -v go >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || qz_die "Go is needed (stripe-mock, composecheck): sudo apt-get install -y golang-go"
    qz_log "installing golang-go"
    qz_apt_install golang-go || qz_die "apt-get install golang-go failed (output above)"
}
