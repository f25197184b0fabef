#!/usr/bin/env bash
# `make up`: Kafka (KRaft) + PostgreSQL + one uvicorn process per service, all on 127.0.0.1.
# Idempotent: what already runs is left alone. `up.sh status` lists what runs.
# <SERVICE>_REPLICAS=N (e.g. GATEWAY_REPLICAS=2 ENGAGEMENT_REPLICAS=2) runs N processes of a service on its one
# port (`qunzhu serve --reuse-port`: the kernel spreads connections over them; consumers share the partitions).
set -euo pipefail
# shellcheck source=deploy/local/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RUN_DIR="$QUNZHU_DATA_DIR/run"
SERVICES=(membership content engagement gateway)
declare -A PORTS=([gateway]=8000 [membership]=8001 [content]=8002 [engagement]=8003)
mkdir -p "$RUN_DIR"

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# replicas NAME -> how many processes of the service (<SERVICE>_REPLICAS, default 1)
replicas() {
    local var n
    var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_REPLICAS"
    n="${!var:-1}"
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || qz_die "$var must be a whole number ≥ 1 (got '$n')"
    echo "$n"
}

# instances NAME -> the run names of its processes: NAME, NAME-2, … (pid and log files in $RUN_DIR)
instances() {
    local k
    echo "$1"
    for ((k = 2; k <= $(replicas "$1"); k++)); do echo "$1-$k"; done
}

service_env() {
    local name="$1" prefix
    prefix="$(echo "$name" | tr '[:lower:]' '[:upper:]')"
    echo "${prefix}_DATABASE_URL=$QUNZHU_PG_URL_BASE/qunzhu_$name"
    echo "${prefix}_BUS=kafka"
    echo "${prefix}_KAFKA_BOOTSTRAP_SERVERS=$QUNZHU_KAFKA_BOOTSTRAP"
    echo "${prefix}_DATA_DIR=$QUNZHU_DATA_DIR"
    if [ "$name" = gateway ]; then
        for upstream in membership content engagement; do
            echo "GATEWAY_$(echo "$upstream" | tr '[:lower:]' '[:upper:]')_URL=http://127.0.0.1:${PORTS[$upstream]}"
        done
    fi
}

status() {
    local rc=0
    bash "$QUNZHU_ROOT/deploy/local/kafka.sh" status >/dev/null 2>&1 && echo "kafka       up   $QUNZHU_KAFKA_BOOTSTRAP" || { echo "kafka       down"; rc=1; }
    bash "$QUNZHU_ROOT/deploy/local/postgres.sh" status >/dev/null 2>&1 && echo "postgres    up   127.0.0.1:$QUNZHU_PG_PORT" || { echo "postgres    down"; rc=1; }
    for name in "${SERVICES[@]}"; do
        for run in $(instances "$name"); do
            if pid_alive "$RUN_DIR/$run.pid"; then
                printf '%-13s up   http://127.0.0.1:%s (pid %s)\n' "$run" "${PORTS[$name]}" "$(cat "$RUN_DIR/$run.pid")"
            else
                printf '%-13s down\n' "$run"; rc=1
            fi
        done
    done
    return $rc
}

for name in "${SERVICES[@]}"; do replicas "$name" >/dev/null || exit 1; done
if [ "${1:-up}" = status ]; then status; exit $?; fi

[ -x "$QUNZHU_PYTHON" ] || qz_die "Python venv not found: run 'make install' first"
bash "$QUNZHU_ROOT/deploy/local/kafka.sh" start
bash "$QUNZHU_ROOT/deploy/local/postgres.sh" start
bash "$QUNZHU_ROOT/deploy/local/postgres.sh" createdb "${SERVICES[@]/#/qunzhu_}"

for name in "${SERVICES[@]}"; do
    mapfile -t vars < <(service_env "$name")
    env "${vars[@]}" "$QUNZHU_PYTHON" -m qunzhu migrate "$name" >/dev/null \
        || qz_die "migrations of $name failed"
done

for name in "${SERVICES[@]}"; do
    prefix="$(echo "$name" | tr '[:lower:]' '[:upper:]')"
    for run in $(instances "$name"); do
        if pid_alive "$RUN_DIR/$run.pid"; then
            echo "$run already running (pid $(cat "$RUN_DIR/$run.pid"))"
            continue
        fi
        if [ "$run" = "$name" ]; then
            qz_port_open 127.0.0.1 "${PORTS[$name]}" && qz_die "port ${PORTS[$name]} is taken by another process (wanted by $name)"
        fi
        mapfile -t vars < <(service_env "$name")
        # Migrations ran above, once; replicas must not race them at startup.
        vars+=("${prefix}_AUTO_MIGRATE=false")
        args=()
        if [ "$(replicas "$name")" -gt 1 ]; then
            args+=(--reuse-port)  # every process of the service binds the port with SO_REUSEPORT
        fi
        if [ "$run" != "$name" ]; then  # the workers that must stay single run in the first process only
            case "$name" in
                gateway) vars+=("GATEWAY_RUN_ACTIONS=false") ;;  # platforms' send limits are per process
                engagement) vars+=("ENGAGEMENT_JOBS_INTERVAL_S=0") ;;  # periodic jobs: one process
            esac
        fi
        # exec with its own redirections: no shell stays behind holding the caller's stdout open.
        (cd "$QUNZHU_ROOT"; exec nohup env "${vars[@]}" "$QUNZHU_PYTHON" -m qunzhu serve "$name" \
            --port "${PORTS[$name]}" "${args[@]}" </dev/null >>"$RUN_DIR/$run.log" 2>&1) &
        echo $! >"$RUN_DIR/$run.pid"
    done
done

for name in "${SERVICES[@]}"; do
    if ! wait_http "http://127.0.0.1:${PORTS[$name]}/readyz" 60; then
        tail -n 30 "$RUN_DIR/$name.log" >&2 || true
        qz_die "$name did not become ready (log: $RUN_DIR/$name.log)"
    fi
done
# A replica that could not bind (e.g. the first process runs without --reuse-port) has exited by now.
sleep 2
for name in "${SERVICES[@]}"; do
    for run in $(instances "$name"); do
        if ! pid_alive "$RUN_DIR/$run.pid"; then
            tail -n 30 "$RUN_DIR/$run.log" >&2 || true
            qz_die "$run exited (log: $RUN_DIR/$run.log); with replicas, restart all: make down && make up"
        fi
    done
done
echo
status
echo
echo "Gateway: http://127.0.0.1:${PORTS[gateway]}/docs   logs: $RUN_DIR/*.log   stop: make down"
