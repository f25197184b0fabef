#!/usr/bin/env bash
# `make down`: stop the services started by up.sh, then Kafka and PostgreSQL. Idempotent.
set -euo pipefail
# shellcheck source=deploy/local/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

RUN_DIR="$QUNZHU_DATA_DIR/run"
# Each service and its replicas (<name>-2.pid, …: <SERVICE>_REPLICAS in up.sh).
for pidfile in "$RUN_DIR"/gateway*.pid "$RUN_DIR"/engagement*.pid "$RUN_DIR"/content*.pid "$RUN_DIR"/membership*.pid; do
    [ -f "$pidfile" ] || continue
    name="$(basename "$pidfile" .pid)"
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        echo "$name stopped"
    fi
    rm -f "$pidfile"
done
bash "$QUNZHU_ROOT/deploy/local/kafka.sh" stop
bash "$QUNZHU_ROOT/deploy/local/postgres.sh" stop
