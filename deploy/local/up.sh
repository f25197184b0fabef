#!/usr/bin/env bash
# `make up`: Kafka (KRaft) + PostgreSQL + one uvicorn process per service, all on 127.0.0.1.
# Idempotent: what already runs is left alone. `up.sh status` lists what runs.
set -euo pipefail
# shellcheck source=deploy/local/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RUN_DIR="$QUNZHU_DATA_DIR/run"
SERVICES=(membership content engagement gateway)
declare -A PORTS=([gateway]=8000 [membership]=8001 [content]=8002 [engagement]=8003)
mkdir -p "$RUN_DIR"

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

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
        if pid_alive "$RUN_DIR/$name.pid"; then
            printf '%-11s up   http://127.0.0.1:%s (pid %s)\n' "$name" "${PORTS[$name]}" "$(cat "$RUN_DIR/$name.pid")"
        else
            printf '%-11s down\n' "$name"; rc=1
        fi
    done
    return $rc
}

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
    if pid_alive "$RUN_DIR/$name.pid"; then
        echo "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"
        continue
    fi
    qz_port_open 127.0.0.1 "${PORTS[$name]}" && qz_die "port ${PORTS[$name]} is taken by another process (wanted by $name)"
    mapfile -t vars < <(service_env "$name")
    # Migrations ran above, once; replicas must not race them at startup.
    vars+=("$(echo "$name" | tr '[:lower:]' '[:upper:]')_AUTO_MIGRATE=false")
    # exec with its own redirections: no shell stays behind holding the caller's stdout open.
    (cd "$QUNZHU_ROOT"; exec nohup env "${vars[@]}" "$QUNZHU_PYTHON" -m qunzhu serve "$name" \
        --port "${PORTS[$name]}" </dev/null >>"$RUN_DIR/$name.log" 2>&1) &
    echo $! >"$RUN_DIR/$name.pid"
done

for name in "${SERVICES[@]}"; do
    if ! wait_http "http://127.0.0.1:${PORTS[$name]}/readyz" 60; then
        tail -n 30 "$RUN_DIR/$name.log" >&2 || true
        qz_die "$name did not become ready (log: $RUN_DIR/$name.log)"
    fi
done
echo
status
echo
echo "Gateway: http://127.0.0.1:${PORTS[gateway]}/docs   logs: $RUN_DIR/*.log   stop: make down"
