"""Bus benchmark: raw aiokafka produce→consume vs the same events through outbox → Kafka → inbox.

    .venv/bin/python bench/bus.py [--events N] [--database postgres|sqlite]

Both paths run in this one process against a Kafka broker of the run's own (deploy/local/kafka.sh,
free loopback ports, temporary data dir) and, for PostgreSQL, fresh databases on the local cluster
(deploy/local/postgres.sh); everything is stopped / dropped at the end. See bench/README.md.

raw      AIOKafkaProducer(acks=all, idempotent) → fresh 3-partition topic → AIOKafkaConsumer group,
         offsets committed manually once per fetched batch. rate = N / (first send → last record
         consumed and its offset committed).
qunzhu   N `community.created` events already in membership's outbox (written before the clock by
         OutboxWriter, one transaction per event by default, timed separately) → OutboxRelay →
         KafkaBus → KafkaBus subscription → EventConsumer (content's inbox + content's real
         `on_community_created`, one row in community_copy per event). rate = N / (relay start →
         N-th effect transaction committed).

ratio = qunzhu_rate / raw_rate, limit 0.5. The script exits 0 whatever the ratio (a benchmark, not a
test) and appends its figures to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds modules named like the services (bench/membership.py …): as the script's directory it
# would shadow the service packages, so it leaves sys.path; the repository root (tests.integration.stack,
# the broker and database tooling) comes first instead.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != Path(_HERE)]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from qunzhu_common.bus.kafka import PRODUCER_MAX_BATCH_BYTES, KafkaBus  # noqa: E402
from qunzhu_common.db.migrate import upgrade_head  # noqa: E402
from qunzhu_common.events.contracts.membership import CommunityCreated  # noqa: E402
from qunzhu_common.events.envelope import Envelope, new_envelope  # noqa: E402
from qunzhu_common.events.registry import default_registry  # noqa: E402
from qunzhu_common.inbox import EventConsumer  # noqa: E402
from qunzhu_common.outbox import OutboxRelay, OutboxWriter  # noqa: E402
from tests.integration.stack import Kafka, Postgres  # noqa: E402

LIMIT = 0.5
RESULTS = Path(__file__).resolve().parent / "results.json"
POM = ROOT / "deploy" / "local" / "kafka" / "pom.xml"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# events


@dataclass(frozen=True)
class BenchEvent:
    envelope: Envelope
    key: bytes  # the Kafka key the registry routes it with (the community id)
    value: bytes  # exactly the bytes OutboxWriter stores and the relay publishes


def make_events(n: int, *, tag: str, occurred_at: datetime | None = None) -> list[BenchEvent]:
    """`community.created` envelopes with fresh community ids, serialized as the outbox does."""
    registry = default_registry()
    events = []
    for i in range(n):
        cid = str(uuid.uuid4())
        at = occurred_at or datetime.now(UTC)
        envelope = new_envelope(
            type="community.created",
            source="membership",
            community_id=cid,
            correlation_id=str(uuid.uuid4()),
            occurred_at=at,
            data=CommunityCreated(
                community_id=cid,
                name=f"增长实验社 {tag}-{i}",
                positioning="每天一个增长实验：三十天内和群友一起做出第一个付费社群，每周复盘一次。",
                owner_id=f"owner-{uuid.uuid4().hex[:16]}",
                timezone="Asia/Shanghai",
                entry_policies=["paid", "application"],
                created_at=at,
            ),
        )
        _topic, key = registry.route(envelope)
        events.append(BenchEvent(envelope=envelope, key=key.encode(), value=envelope.to_bytes()))
    return events


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process, seconds (None when it is gone or unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Helpers:
    """The other processes that work for this benchmark: its Kafka broker and its PostgreSQL backends."""

    kafka_pid_file: Path
    pg_marker: str | None  # backends show "postgres: <user> <database> …" in their command line

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {"kafka": [], "postgres": []}
        with contextlib.suppress(OSError, ValueError):
            out["kafka"].append(int(self.kafka_pid_file.read_text().strip()))
        if self.pg_marker:
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    with contextlib.suppress(OSError):
                        if self.pg_marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                            out["postgres"].append(int(proc.name))
        return out


class CpuMeter:
    """CPU used during a timed phase: this process (all threads), its broker and database backends,
    and the whole machine (/proc/stat); what is left is other work sharing the machine (noise)."""

    def __init__(self, helpers: Helpers | None = None) -> None:
        self.helpers = helpers

    @staticmethod
    def _machine() -> tuple[float, float, float] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        steal = fields[7] if len(fields) > 7 else 0
        return (sum(fields[:8]) - idle - steal) / hz, steal / hz, sum(fields[:8]) / hz

    def _helpers(self) -> dict[str, dict[int, float]]:
        if self.helpers is None:
            return {}
        return {
            name: {pid: cpu for pid in pids if (cpu := _proc_cpu_s(pid)) is not None}
            for name, pids in self.helpers.pids().items()
        }

    def __enter__(self) -> CpuMeter:
        self._h0 = self._helpers()
        self._proc0, self._wall0, self._m0 = time.process_time(), time.perf_counter(), self._machine()
        return self

    def __exit__(self, *_: object) -> None:
        self.process_s = time.process_time() - self._proc0
        self.wall_s = time.perf_counter() - self._wall0
        m1 = self._machine()
        h1 = self._helpers()
        # a backend that connected during the phase started from zero
        self.helper_s = {
            name: sum(cpu - self._h0.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in h1.items()
        }
        self.machine = None
        if self._m0 is not None and m1 is not None:
            self.machine = tuple(b - a for a, b in zip(self._m0, m1, strict=True))

    def figures(self, events: int) -> dict[str, Any]:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        capacity = self.wall_s * cpus

        def pct(seconds: float) -> float:
            return round(100 * seconds / capacity, 1)

        out: dict[str, Any] = {
            "process_cpu_us_per_event": round(self.process_s / events * 1e6, 1),
            "cpu_pct": {"python": pct(self.process_s)},  # shares of all CPUs over the phase
        }
        for name, seconds in self.helper_s.items():
            out["cpu_pct"][name] = pct(seconds)
        if self.machine is not None:
            busy, steal, _total = self.machine
            ours = self.process_s + sum(self.helper_s.values())
            out["cpu_pct"]["machine_busy"] = pct(busy)
            out["cpu_pct"]["other_processes"] = pct(max(0.0, busy - ours))
            if steal:
                out["cpu_pct"]["steal"] = pct(steal)
        return out


def machine_busy_pct(sample_s: float = 1.0) -> float | None:
    """Busy share of all CPUs over `sample_s` (blocking; call while this process is idle)."""
    first = CpuMeter._machine()
    time.sleep(sample_s)
    second = CpuMeter._machine()
    if first is None or second is None:
        return None
    busy, total = second[0] - first[0], second[2] - first[2]
    return round(100 * busy / total, 1) if total > 0 else None


@dataclass
class Quiet:
    """Waits, before each timed phase, until the rest of the machine is (nearly) idle.

    The figures mean nothing when other work (a test suite, another broker) shares the CPUs, so the
    bench waits for a quiet moment; past the timeout it measures anyway and says so.
    """

    below_pct: float
    timeout_s: float
    seen: dict[str, float | None] = field(default_factory=dict)
    noisy: list[str] = field(default_factory=list)

    async def wait(self, phase: str) -> None:
        if self.timeout_s <= 0:
            return
        deadline = time.monotonic() + self.timeout_s
        announced = False
        while True:
            busy = await asyncio.to_thread(machine_busy_pct, 1.0)
            if busy is None or busy <= self.below_pct:
                break
            if time.monotonic() > deadline:
                log(f"{phase}: machine still {busy:.0f}% busy after {self.timeout_s:g}s; measuring anyway (noisy)")
                self.noisy.append(phase)
                break
            if not announced:
                log(f"{phase}: machine {busy:.0f}% busy (other processes); waiting for < {self.below_pct:g}%")
                announced = True
        self.seen[phase] = busy


@dataclass
class PathResult:
    events: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    cpu: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    def latency(self, q: float) -> float | None:
        return round(percentile(self.latencies_ms, q), 2) if self.latencies_ms else None


async def paced(items: Sequence[Any], rate: float, send: Callable[[Any], Awaitable[None]]) -> None:
    """Call `send` for each item at `rate` per second (open loop: a late send does not shift the next)."""
    start = time.perf_counter()
    for i, item in enumerate(items):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(item)


# --------------------------------------------------------------------------------------------------
# raw aiokafka


class RawSink:
    """A consumer-group member that commits each fetched batch and signals when a target is reached."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()
        self.done_at = 0.0
        self.sent_at: dict[bytes, float] | None = None  # key → wall time sent, during latency probes
        self.latencies_ms: list[float] = []
        self.task: asyncio.Task[None] | None = None

    def expect(self, n: int) -> None:
        self.target = self.count + n
        self.done.clear()

    async def run(self) -> None:
        consumer = self.consumer
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            if not batches:
                continue
            await consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in batches.items()})
            now = time.perf_counter()
            if self.sent_at is not None:
                wall = time.time()
                for msgs in batches.values():
                    for msg in msgs:
                        sent = self.sent_at.get(msg.key)
                        if sent is not None:
                            self.latencies_ms.append((wall - sent) * 1000)
            self.count += sum(len(msgs) for msgs in batches.values())
            if self.target and self.count >= self.target and not self.done.is_set():
                self.done_at = now
                self.done.set()


async def raw_path(
    bootstrap: str, events: list[BenchEvent], warmup: list[BenchEvent], probe: list[BenchEvent], probe_rate: float,
    quiet: Quiet, helpers: Helpers,
) -> PathResult:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
        for _ in range(100):
            if topic in set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()

    # Same producer and consumer settings as qunzhu_common.bus.kafka.KafkaBus.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="bench-raw-producer", acks="all", enable_idempotence=True,
        linger_ms=5, max_batch_size=PRODUCER_MAX_BATCH_BYTES,
    )
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        client_id="bench-raw-consumer", enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await producer.start()
    await consumer.start()
    sink = RawSink(consumer)
    sink.task = asyncio.create_task(sink.run())

    async def burst(batch: list[BenchEvent]) -> float:
        sink.expect(len(batch))
        t0 = time.perf_counter()
        pending = [await producer.send(topic, e.value, key=e.key) for e in batch]
        await asyncio.gather(*pending)
        await sink.done.wait()
        return sink.done_at - t0

    try:
        for _ in range(300):
            if len(consumer.assignment()) == 3:
                break
            await asyncio.sleep(0.05)
        log(f"raw: warm-up ({len(warmup)} events)")
        await burst(warmup)
        await quiet.wait("raw")
        log(f"raw: {len(events)} events")
        with CpuMeter(helpers) as cpu:
            seconds = await burst(events)

        log(f"raw: latency probe ({len(probe)} events at {probe_rate:g}/s)")
        sink.sent_at = {}
        sink.expect(len(probe))

        async def send(e: BenchEvent) -> None:
            assert sink.sent_at is not None
            sink.sent_at[e.key] = time.time()
            await producer.send(topic, e.value, key=e.key)

        await paced(probe, probe_rate, send)
        await sink.done.wait()
        return PathResult(
            events=len(events), seconds=seconds, latencies_ms=sink.latencies_ms, cpu=cpu.figures(len(events))
        )
    finally:
        sink.task.cancel()
        await asyncio.gather(sink.task, return_exceptions=True)
        await consumer.stop()
        await producer.stop()


# --------------------------------------------------------------------------------------------------
# qunzhu: outbox → relay → KafkaBus → subscription → EventConsumer (inbox + handler)


class EffectCounter:
    """Counts the effects content's EventConsumer committed, through its metrics hook.

    EventConsumer calls `metrics.consumed(…, "processed")` (or, for a batch, `consumed_many(…, n)`) after
    the events' transaction committed, so reaching N is the moment the N-th effect is durable. The
    service's own metrics still run.
    """

    def __init__(self, metrics: Any) -> None:
        self._inner = metrics.consumed
        self._inner_many = metrics.consumed_many
        metrics.consumed = self.consumed
        metrics.consumed_many = self.consumed_many
        self.processed = 0
        self.other: dict[str, int] = {}
        self.target = 0
        self.done = asyncio.Event()
        self.done_at = 0.0

    def expect(self, n: int) -> None:
        self.target = self.processed + n
        self.done.clear()

    def consumed(self, topic: str, type_: str, outcome: str) -> None:
        self._inner(topic, type_, outcome)
        self._count(outcome, 1)

    def consumed_many(self, topic: str, type_: str, outcome: str, count: int) -> None:
        # A consumed batch reports its outcomes per kind, after its transaction committed.
        self._inner_many(topic, type_, outcome, count)
        self._count(outcome, count)

    def _count(self, outcome: str, count: int) -> None:
        if outcome != "processed":
            self.other[outcome] = self.other.get(outcome, 0) + count
            return
        self.processed += count
        if self.target and self.processed >= self.target and not self.done.is_set():
            self.done_at = time.perf_counter()
            self.done.set()


@contextlib.contextmanager
def profiling(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None  # noqa: N806
    if Profiler is not None:
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
            log(f"pyinstrument profile written to {path}")
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        with path.open("w") as out:
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(80)
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(60)
        log(f"cProfile profile written to {path}")


def service_apps(bootstrap: str, membership_url: str, content_url: str) -> tuple[Any, Any]:
    """Membership and content exactly as their create_app builds them (handlers, tables, metrics).

    Not served over HTTP and their lifespan hooks (content's scheduler) are not entered: the bench
    starts each ServiceRuntime itself. Membership's relay is started and stopped by the bench.
    """
    from content.app import create_app as create_content
    from content.settings import ContentSettings
    from membership.app import create_app as create_membership
    from membership.settings import MembershipSettings

    common = dict(bus="kafka", kafka_bootstrap_servers=bootstrap, auto_migrate=False, log_level="WARNING")
    membership = create_membership(
        MembershipSettings(database_url=membership_url, run_relay=False, run_consumers=False, **common)
    )
    content = create_content(ContentSettings(database_url=content_url, **common))
    return membership, content


async def qunzhu_path(
    membership_app: Any,
    content_app: Any,
    events: list[BenchEvent],
    warmup: list[BenchEvent],
    probe_count: int,
    probe_rate: float,
    tx_events: int,
    profile: Path | None,
    quiet: Quiet,
    helpers: Helpers,
) -> PathResult:
    producer, consumer = membership_app.state.runtime, content_app.state.runtime
    outbox_table = producer.spec.outbox_table
    community_copy = consumer.spec.metadata.tables["community_copy"]  # on_community_created's effect
    if "community.created" not in consumer.spec.handlers:
        raise SystemExit("content has no community.created handler any more: update bench/bus.py")
    counter = EffectCounter(consumer.metrics)

    async def write_outbox(batch: list[BenchEvent]) -> float:
        t0 = time.perf_counter()
        for start in range(0, len(batch), tx_events):
            async with producer.session_maker() as session, session.begin():
                for e in batch[start : start + tx_events]:
                    await producer.outbox.add(session, e.envelope)
        return time.perf_counter() - t0

    try:
        await producer.start()  # its KafkaBus (build_bus), engine, OutboxWriter and OutboxRelay (not running)
        await consumer.start()  # its KafkaBus, engine, EventConsumer subscribed as group "content"
        relay = producer.relay
        # The real machinery, as the services wire it: no stand-ins anywhere on the path.
        assert isinstance(relay, OutboxRelay) and isinstance(producer.outbox, OutboxWriter)
        assert isinstance(producer.bus, KafkaBus) and isinstance(consumer.bus, KafkaBus)
        assert isinstance(consumer.consumer, EventConsumer)
        # warm-up: the whole path once, with the relay running as in a service
        log(f"qunzhu: warm-up ({len(warmup)} events)")
        counter.expect(len(warmup))
        relay.start()
        await write_outbox(warmup)
        await asyncio.wait_for(counter.done.wait(), 120)
        await relay.stop()

        log(f"qunzhu: writing {len(events)} events to the outbox ({tx_events} per transaction), relay stopped")
        insert_seconds = await write_outbox(events)
        log(f"qunzhu: outbox written in {insert_seconds:.2f}s; relaying {len(events)} events")

        counter.expect(len(events))
        await quiet.wait("qunzhu")
        with profiling(profile), CpuMeter(helpers) as cpu:
            t0 = time.perf_counter()
            relay.start()
            await counter.done.wait()
            seconds = counter.done_at - t0

        log(f"qunzhu: latency probe ({probe_count} events at {probe_rate:g}/s, one transaction each)")
        counter.expect(probe_count)
        probe_ids: list[str] = []

        async def emit(_: int) -> None:
            e = make_events(1, tag="probe")[0]  # occurred_at = now
            probe_ids.append(e.envelope.community_id)
            async with producer.session_maker() as session, session.begin():
                await producer.outbox.add(session, e.envelope)

        await paced(range(probe_count), probe_rate, emit)
        await asyncio.wait_for(counter.done.wait(), 120)
        await relay.stop()

        # Verify from the databases: every effect is there exactly once, nothing left in the outbox.
        run_ids = [e.envelope.community_id for e in (*warmup, *events)] + probe_ids
        inbox = consumer.spec.inbox_table
        async with consumer.session_maker() as session:
            copies = 0
            for start in range(0, len(run_ids), 5000):
                chunk = run_ids[start : start + 5000]
                copies += await session.scalar(
                    select(func.count()).select_from(community_copy).where(community_copy.c.id.in_(chunk))
                )
            inbox_rows = await session.scalar(
                select(func.count()).select_from(inbox)
                .where(inbox.c.consumer == "content", inbox.c.event_type == "community.created")
            )
            rows = (
                await session.execute(
                    select(community_copy.c.created_at, community_copy.c.synced_at)
                    .where(community_copy.c.id.in_(probe_ids))
                )
            ).all()
        async with producer.session_maker() as session:
            unpublished = await session.scalar(
                select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
            )
        expected = len(run_ids)
        if copies != expected or inbox_rows != expected or unpublished:
            raise RuntimeError(
                f"verification failed: {copies} community_copy rows, {inbox_rows} inbox rows for {expected} "
                f"events, {unpublished} outbox rows unpublished"
            )
        latencies = [(synced - created).total_seconds() * 1000 for created, synced in rows]
        return PathResult(
            events=len(events), seconds=seconds, latencies_ms=latencies, cpu=cpu.figures(len(events)),
            extra={
                "outbox_insert_seconds": round(insert_seconds, 3),
                "outbox_insert_rate": round(len(events) / insert_seconds, 1),
                "relay_batch_size": producer.settings.outbox_batch_size,
                "verified_effects": copies,
                "consumer_outcomes_other_than_processed": dict(counter.other),
            },
        )
    finally:
        await consumer.stop()
        await producer.stop()


# --------------------------------------------------------------------------------------------------
# infrastructure, report, results


class BenchPostgres(Postgres):
    """tests.integration.stack.Postgres, with only the two databases this benchmark uses."""

    def databases(self) -> list[str]:
        return [self.database(name) for name in ("membership", "content")]


def kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    return match.group(1) if match else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine(database: str, pg_version: str | None, loop: str) -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": mem,
        "python": platform.python_version(),
        "event_loop": loop,
        "kafka": kafka_version(),
        "aiokafka": version("aiokafka"),
        "sqlalchemy": version("sqlalchemy"),
        "database": database,
        "postgresql": pg_version,
        "asyncpg": version("asyncpg") if database == "postgres" else None,
        "aiosqlite": version("aiosqlite") if database == "sqlite" else None,
    }


async def pg_server_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def append_result(entry: dict[str, Any]) -> None:
    """Append to the JSON list in bench/results.json (shared by every benchmark; created if missing)."""
    import fcntl

    with RESULTS.open("a+") as handle:  # the lock serialises benchmarks finishing together
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        results = json.loads(text) if text.strip() else []
        if not isinstance(results, list):
            raise SystemExit(f"{RESULTS} is not a JSON list; not touching it")
        results.append(entry)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def report(raw: PathResult, qz: PathResult, args: argparse.Namespace, size: int) -> float:
    ratio = qz.rate / raw.rate
    verdict = "PASS" if ratio >= LIMIT else "BELOW"

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    print()
    print(f"bus benchmark: {raw.events} community.created events ({size} B envelopes), database {args.database}")
    print(f"{'path':<44}{'events':>8}{'seconds':>10}{'events/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'raw aiokafka produce → consume+commit':<44}{raw.events:>8}{raw.seconds:>10.3f}{raw.rate:>11.0f}"
          f"{fmt(raw.latency(50)):>9}{fmt(raw.latency(99)):>9}")
    print(f"{'qunzhu outbox → relay → kafka → inbox+effect':<44}{qz.events:>8}{qz.seconds:>10.3f}{qz.rate:>11.0f}"
          f"{fmt(qz.latency(50)):>9}{fmt(qz.latency(99)):>9}")
    print(f"  outbox written before the clock: {qz.events} events, {args.tx_events} per transaction, in "
          f"{qz.extra['outbox_insert_seconds']:.2f}s ({qz.extra['outbox_insert_rate']:.0f} events/s), not timed")
    for name, r in (("raw", raw), ("qunzhu", qz)):
        if r.cpu:
            shares = ", ".join(f"{k.replace('_', ' ')} {v:.0f}%" for k, v in r.cpu["cpu_pct"].items())
            print(f"  {name:<7} {r.cpu['process_cpu_us_per_event']:.0f} µs of Python CPU per event; "
                  f"share of all {os.cpu_count()} CPUs: {shares}")
    print(f"  latency: separate probe of {args.probe_events} events at {args.probe_rate:g}/s per path; raw = send → "
          "offset committed, qunzhu = occurred_at → effect row stamped in its transaction")
    print(f"ratio = qunzhu_rate / raw_rate = {ratio:.3f}   limit {LIMIT}   {verdict}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per measured run (default 20000)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--warmup", type=int, default=1000, help="events of the untimed warm-up per path")
    parser.add_argument("--tx-events", type=int, default=1,
                        help="outbox events per writing transaction (default 1: one request, one event)")
    parser.add_argument("--probe-events", type=int, default=300, help="events of the paced latency probe")
    parser.add_argument("--probe-rate", type=float, default=100.0, help="events/s of the latency probe")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop (auto: uvloop when installed, as uvicorn does for the services)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="profile the timed qunzhu phase into this file (pyinstrument, else cProfile); "
                             "the run is then not appended to results.json")
    parser.add_argument("--quiet-below", type=float, default=15.0,
                        help="before each timed phase wait until the machine is below this %% busy (default 15)")
    parser.add_argument("--quiet-timeout", type=float, default=300.0,
                        help="longest wait for a quiet machine, seconds; 0 = do not wait (default 300)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.json")
    parser.add_argument("--label", default="",
                        help="what changed and what else ran, kept with the record in results.json")
    parser.add_argument("--skip-noisy", action="store_true",
                        help="do not append a run during which other work shared the machine")
    args = parser.parse_args(argv)
    if args.events < 1 or args.warmup < 1 or args.tx_events < 1 or args.probe_events < 1:
        parser.error("counts must be positive")

    loop_name = args.loop
    if loop_name == "auto":
        try:
            import uvloop  # noqa: F401

            loop_name = "uvloop"
        except ImportError:
            loop_name = "asyncio"

    quiet = Quiet(below_pct=args.quiet_below, timeout_s=args.quiet_timeout)
    run_id = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix=f"qunzhu-bench-{run_id}-"))
    kafka = Kafka(data_dir=tmp / "kafka")
    postgres: BenchPostgres | None = None
    kafka_started = False
    try:
        log(f"starting a dedicated Kafka broker on {kafka.bootstrap} (data in {kafka.data_dir})")
        kafka_started = True  # stop() is a no-op when start() failed half-way
        kafka.start()
        if args.database == "postgres":
            postgres = BenchPostgres(prefix=f"qzbench_{run_id}")
            log(f"creating databases {', '.join(postgres.databases())} on the local PostgreSQL")
            postgres.start()
            membership_url, content_url = postgres.url("membership"), postgres.url("content")
        else:
            membership_url = f"sqlite+aiosqlite:///{tmp / 'membership.sqlite3'}"
            content_url = f"sqlite+aiosqlite:///{tmp / 'content.sqlite3'}"
        membership_app, content_app = service_apps(kafka.bootstrap, membership_url, content_url)
        log("migrating membership and content (alembic upgrade head)")
        for app, url in ((membership_app, membership_url), (content_app, content_url)):
            upgrade_head(app.state.runtime.spec.migrations_dir, url)

        helpers = Helpers(kafka.data_dir / "kafka" / "kafka.pid", postgres.prefix if postgres else None)
        log("building events")
        events = make_events(args.events, tag=run_id)
        size = len(events[0].value)
        raw_warmup = make_events(args.warmup, tag=f"{run_id}-rw")
        qz_warmup = make_events(args.warmup, tag=f"{run_id}-qw")
        raw_probe = make_events(args.probe_events, tag=f"{run_id}-rp")

        async def run() -> tuple[PathResult, PathResult, str | None]:
            pg_version = await pg_server_version(membership_url) if postgres else None
            raw = await raw_path(kafka.bootstrap, events, raw_warmup, raw_probe, args.probe_rate, quiet, helpers)
            log(f"raw: {raw.events} events in {raw.seconds:.3f}s = {raw.rate:.0f}/s")
            qz = await qunzhu_path(
                membership_app, content_app, events, qz_warmup,
                args.probe_events, args.probe_rate, args.tx_events, args.profile, quiet, helpers,
            )
            log(f"qunzhu: {qz.events} events in {qz.seconds:.3f}s = {qz.rate:.0f}/s")
            return raw, qz, pg_version

        if loop_name == "uvloop":
            import uvloop

            raw, qz, pg_version = uvloop.run(run())
        else:
            raw, qz, pg_version = asyncio.run(run())

        for phase, result in (("raw", raw), ("qunzhu", qz)):
            other = result.cpu.get("cpu_pct", {}).get("other_processes", 0.0)
            if other > args.quiet_below and phase not in quiet.noisy:
                quiet.noisy.append(phase)  # something else ran during the timed phase
        ratio = report(raw, qz, args, size)
        if quiet.noisy:
            print(f"  WARNING: other work shared the machine around the timed phase of {', '.join(quiet.noisy)}: "
                  "the figures are noisy; run again on a quiet machine")
        entry = {
            "benchmark": "bus",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(args.database, pg_version, loop_name),
            "parameters": {
                "events": args.events, "database": args.database, "warmup_events": args.warmup,
                "envelope_bytes": size, "partitions": 3, "outbox_events_per_transaction": args.tx_events,
                "outbox_inserted_before_clock": True, "probe_events": args.probe_events,
                "probe_rate": args.probe_rate,
            },
            "raw": {"seconds": round(raw.seconds, 4), "events_per_s": round(raw.rate, 1),
                    "p50_ms": raw.latency(50), "p99_ms": raw.latency(99), **raw.cpu},
            "qunzhu": {"seconds": round(qz.seconds, 4), "events_per_s": round(qz.rate, 1),
                       "p50_ms": qz.latency(50), "p99_ms": qz.latency(99), **qz.cpu, **qz.extra},
            "machine_busy_pct_before": quiet.seen,
            "noisy": quiet.noisy or False,
            **({"label": args.label} if args.label else {}),
            "ratio": round(ratio, 4),
            "limit": LIMIT,
            "verdict": "PASS" if ratio >= LIMIT else "BELOW",
        }
        skip = "profiled run" if args.profile else "--no-record" if args.no_record else None
        if skip is None and args.skip_noisy and quiet.noisy:
            skip = "noisy run, --skip-noisy"
        if skip:
            print(f"(not appended to {RESULTS.relative_to(ROOT)}: {skip})")
        else:
            append_result(entry)
            print(f"appended to {RESULTS.relative_to(ROOT)}")
        return 0
    finally:
        if postgres is not None:
            with contextlib.suppress(Exception):
                log("dropping the benchmark databases")
                postgres.drop()
        if kafka_started:
            try:
                log("stopping the Kafka broker")
                kafka.stop()
            except Exception as exc:  # still remove what we can
                log(f"kafka stop failed: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
