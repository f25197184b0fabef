#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft: broker + controller in one JVM) from Maven Central jars, no Docker.
#
#   deploy/local/kafka.sh fetch    download the jars into $QUNZHU_CACHE_DIR/kafka-<version>/libs (once)
#   deploy/local/kafka.sh start    fetch if needed, format storage once, start, wait until it serves metadata
#   deploy/local/kafka.sh stop     SIGTERM, wait, then SIGKILL; no-op when not running
#   deploy/local/kafka.sh status   exit 0 when up, 1 when not
#
# The broker version is pinned in deploy/local/kafka/pom.xml (<kafka.version>).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$HERE/env.sh"

POM="$HERE/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
[ -n "$KAFKA_VERSION" ] || qz_die "cannot read <kafka.version> from $POM"
KAFKA_HOME="$QUNZHU_CACHE_DIR/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
STAMP="$KAFKA_HOME/.complete"          # holds the pom's checksum: a changed pom refetches

DATA="$QUNZHU_DATA_DIR/kafka"
LOG_DIRS="$DATA/logs"                  # Kafka's log.dirs (the topic data)
CONF="$DATA/server.properties"
LOG4J_CONF="$DATA/log4j2.properties"
CLUSTER_ID_FILE="$DATA/cluster.id"
PID_FILE="$DATA/kafka.pid"
OUT_FILE="$DATA/kafka.out"             # the JVM's stdout/stderr
SERVER_LOG="$DATA/server.log"          # log4j's log (rolled at 20 MB, 3 kept)

START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_AUTO_CREATE_TOPICS="${KAFKA_AUTO_CREATE_TOPICS:-true}"
KAFKA_NUM_PARTITIONS="${KAFKA_NUM_PARTITIONS:-3}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }
fetched() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(pom_sum)" ] && [ -d "$LIBS" ]; }

cmd_fetch() {
    if fetched; then
        qz_log "kafka $KAFKA_VERSION: jars already in $LIBS"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || qz_die "Maven (mvn) not found: needed to fetch Kafka jars"
    qz_find_java 17 >/dev/null || qz_die "Java 17+ not found (set JAVA_HOME or put java 17+ on PATH)"
    mkdir -p "$KAFKA_HOME"
    local tmp="$KAFKA_HOME/libs.tmp.$$" t0=$SECONDS
    rm -rf "$tmp"
    qz_log "kafka $KAFKA_VERSION: fetching jars from Maven Central into $LIBS"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" \
            >"$KAFKA_HOME/fetch.log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$KAFKA_HOME/fetch.log" | tail -n 40 >&2
        rm -rf "$tmp"
        qz_die "mvn dependency:copy-dependencies failed for kafka $KAFKA_VERSION (output above)"
    fi
    [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; qz_die "fetch incomplete: kafka_2.13-$KAFKA_VERSION.jar missing"; }
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    pom_sum >"$STAMP"
    qz_log "kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars fetched in $((SECONDS - t0))s"
}

# the pid in PID_FILE, if that process is alive and is our broker
running_pid() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F "kafka.Kafka $CONF" >/dev/null || return 1
    printf '%s\n' "$pid"
}

write_config() {
    mkdir -p "$LOG_DIRS"
    cat >"$CONF.tmp" <<EOF
# Written by deploy/local/kafka.sh on every start: edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOG_DIRS

num.partitions=$KAFKA_NUM_PARTITIONS
auto.create.topics.enable=$KAFKA_AUTO_CREATE_TOPICS
delete.topic.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

log.retention.hours=168
log.segment.bytes=104857600
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
    mv "$CONF.tmp" "$CONF"
    cat >"$LOG4J_CONF" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $SERVER_LOG
appender.file.filePattern = $SERVER_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

format_storage() {
    local java="$1" cid
    if [ -f "$LOG_DIRS/meta.properties" ]; then
        return 0
    fi
    if [ -s "$CLUSTER_ID_FILE" ]; then
        cid="$(cat "$CLUSTER_ID_FILE")"
    else
        # a Kafka Uuid: 16 random bytes, url-safe base64 without padding, not starting with '-'
        cid="$("$java" -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J_CONF" kafka.tools.StorageTool random-uuid)"
        printf '%s\n' "$cid" >"$CLUSTER_ID_FILE"
    fi
    qz_log "kafka: formatting storage in $LOG_DIRS (cluster id $cid)"
    if ! "$java" -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J_CONF" \
            kafka.tools.StorageTool format -t "$cid" -c "$CONF" --ignore-formatted >"$DATA/format.log" 2>&1; then
        cat "$DATA/format.log" >&2
        qz_die "kafka: formatting storage in $LOG_DIRS failed (output above)"
    fi
}

# does the broker answer a metadata request? (aiokafka from the venv when there, else Kafka's own tool)
serves_metadata() {
    local java="$1"
    if [ -n "${QUNZHU_PYTHON:-}" ] && "$QUNZHU_PYTHON" -c 'import aiokafka' 2>/dev/null; then
        "$QUNZHU_PYTHON" - "$QUNZHU_KAFKA_BOOTSTRAP" <<'PY' >/dev/null 2>&1
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 10)
        assert cluster["brokers"] and cluster["controller_id"] is not None, cluster
        try:  # best effort: makes the broker create __consumer_offsets now, not in the first test
            await asyncio.wait_for(admin.find_coordinator("qunzhu-warmup"), 5)
        except Exception:
            pass
    finally:
        await admin.close()

asyncio.run(main())
PY
    else
        timeout 30 "$java" -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J_CONF" \
            org.apache.kafka.tools.BrokerApiVersionsCommand \
            --bootstrap-server "$QUNZHU_KAFKA_BOOTSTRAP" >/dev/null 2>&1
    fi
}

print_failure_logs() {
    if [ -s "$SERVER_LOG" ]; then
        qz_log "----- ERROR/FATAL lines of $SERVER_LOG -----"
        grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$SERVER_LOG" | tail -n 15 >&2 || true
        qz_log "----- last lines of $SERVER_LOG -----"
        tail -n 15 "$SERVER_LOG" >&2
    fi
    if [ -s "$OUT_FILE" ]; then
        qz_log "----- last lines of $OUT_FILE (JVM stdout/stderr) -----"
        tail -n 20 "$OUT_FILE" >&2
    fi
}

cmd_start() {
    local pid java t0=$SECONDS deadline
    mkdir -p "$DATA"
    exec 9>"$DATA/.lock"
    flock -w 120 9 || qz_die "kafka: another kafka.sh holds $DATA/.lock"
    if pid="$(running_pid)"; then
        qz_log "kafka $KAFKA_VERSION already running (pid $pid), $(grep '^advertised.listeners=' "$CONF" | cut -d= -f2)"
        return 0
    fi
    java="$(qz_find_java 17)" || qz_die "Java 17+ not found (set JAVA_HOME or put java 17+ on PATH)"
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        qz_port_open 127.0.0.1 "$port" && qz_die "kafka: port 127.0.0.1:$port is already in use by another process"
    done
    cmd_fetch
    write_config
    format_storage "$java"

    qz_log "kafka $KAFKA_VERSION: starting on $QUNZHU_KAFKA_BOOTSTRAP (java $(qz_java_major "$java"), data in $DATA)"
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS / KAFKA_JVM_OPTS are word lists
    nohup "$java" $KAFKA_HEAP_OPTS ${KAFKA_JVM_OPTS:-} \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$DATA" \
        -cp "$LIBS/*" kafka.Kafka "$CONF" >"$OUT_FILE" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"

    deadline=$((SECONDS + START_TIMEOUT))
    until qz_port_open 127.0.0.1 "$KAFKA_PORT" && serves_metadata "$java"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            print_failure_logs
            qz_die "kafka: the broker exited during start-up (logs above)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            print_failure_logs
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            qz_die "kafka: not serving metadata on $QUNZHU_KAFKA_BOOTSTRAP after ${START_TIMEOUT}s (broker killed; logs above)"
        fi
        sleep 0.5
    done
    qz_log "kafka $KAFKA_VERSION: up on $QUNZHU_KAFKA_BOOTSTRAP (pid $pid) in $((SECONDS - t0))s"
}

cmd_stop() {
    local pid deadline
    mkdir -p "$DATA"
    exec 9>"$DATA/.lock"
    flock -w 120 9 || qz_die "kafka: another kafka.sh holds $DATA/.lock"
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        qz_log "kafka: not running"
        return 0
    fi
    qz_log "kafka: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            qz_log "kafka: still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
    done
    rm -f "$PID_FILE"
    qz_log "kafka: stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)" && qz_port_open 127.0.0.1 "$KAFKA_PORT"; then
        echo "kafka $KAFKA_VERSION running (pid $pid), $(grep '^advertised.listeners=' "$CONF" | cut -d= -f2), data in $DATA"
        return 0
    fi
    echo "kafka: not running"
    return 1
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {fetch|start|stop|status}" >&2; exit 2 ;;
esac
