#!/usr/bin/env bash
# The servers a test run starts (Kafka brokers, private PostgreSQL clusters, Prometheus, the services'
# processes) are stopped by the tests' own fixtures. This is the safety net for a run that did not get
# that far (killed, interrupted): the test tooling records each server it starts in the run's directory
# ($QUNZHU_TEST_RUN_DIR, see tests/integration/stack.py), and `stop` stops whatever is still running there.
#
#   deploy/local/test-servers.sh new          make a run directory, print its path (make test exports it)
#   deploy/local/test-servers.sh stop DIR     stop what DIR records, then remove DIR (make test's exit trap)
#   deploy/local/test-servers.sh stop         the same for every run directory left on this machine
#                                             (`make stop-test-servers`)
#
# A record is one file in DIR: kafka-* (a broker's QUNZHU_DATA_DIR), pg-* (a cluster's QUNZHU_PG_DIR, removed
# after stopping) or pid-<pid> ("<start time> <name>": the process is signalled only while /proc shows the
# same start time, so a reused pid is left alone).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$HERE/env.sh"

RUNS_ROOT="${QUNZHU_TEST_RUNS_ROOT:-/var/tmp}"
PREFIX="qunzhu-test."

# field 22 of /proc/PID/stat (start time in clock ticks), after the parenthesised command name
start_time() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

stop_pid() {
    local pid="$1" want="$2" name="$3" i
    [ "$(start_time "$pid")" = "$want" ] || return 0
    qz_log "test-servers: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        [ "$(start_time "$pid")" = "$want" ] || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_run() {
    local dir="$1" record
    [ -d "$dir" ] || return 0
    for record in "$dir"/pid-*; do
        [ -f "$record" ] || continue
        read -r started name <"$record" || continue
        stop_pid "${record##*/pid-}" "$started" "${name:-process}"
    done
    for record in "$dir"/kafka-*; do
        [ -f "$record" ] || continue
        QUNZHU_DATA_DIR="$(cat "$record")" bash "$HERE/kafka.sh" stop 2>&1 | grep -v 'not running' >&2
    done
    for record in "$dir"/pg-*; do
        [ -f "$record" ] || continue
        local pgdir
        pgdir="$(cat "$record")"
        [ -d "$pgdir" ] || continue
        QUNZHU_PG_DIR="$pgdir" bash "$HERE/postgres.sh" stop 2>&1 | grep -v 'not running' >&2
        case "$pgdir" in /var/tmp/qunzhu-pg-?*) rm -rf "$pgdir" ;; esac
    done
    rm -rf "$dir"
}

cmd="${1:-}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
    new)
        mktemp -d "$RUNS_ROOT/${PREFIX}XXXXXX"
        ;;
    stop)
        if [ "$#" -gt 0 ]; then
            for d in "$@"; do stop_run "$d"; done
        else
            found=""
            for d in "$RUNS_ROOT/$PREFIX"*; do
                [ -d "$d" ] || continue
                found=1
                stop_run "$d"
            done
            [ -n "$found" ] || qz_log "test-servers: no test run left anything behind"
        fi
        ;;
    *)
        echo "usage: $0 {new|stop [RUN_DIR...]}" >&2
        exit 2
        ;;
esac
exit 0
