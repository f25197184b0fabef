"""End-to-end benchmark: a signed chat webhook → points visible on the leaderboard, on the distributed stack.

    .venv/bin/python bench/e2e.py [--rates 200,1000] [--seconds 5] [--members 200] [--connections 64]
                                  [--gateways 1] [--engagement 1] [--partitions P] [--communities K]

The stack is the integration tests' (tests/integration/stack.py): a Kafka broker of the run's own (free
loopback ports, temporary data dir), fresh PostgreSQL databases on the local cluster, and the four services
as separate `python -m qunzhu serve` processes; everything is stopped / dropped at the end.

Setup (untimed), through the gateway like `python -m qunzhu demo`: a community, a generic connector, the
owner's login (one-time code through the bot bridge), a paid plan, `--members` Stripe payments; one
message each, waited for, so every member is known to engagement.

Timed, per offered rate R (open loop: event i is due at t0 + i/R; latency counts from that instant, so
a sender falling behind shows up as latency, not as a slower schedule): one webhook per event (a Standard
Webhooks delivery carrying one effective chat message, +1 point on its own simulated day: no cap, no
cooldown), sent over `--connections` keep-alive HTTP/1.1 connections, requests built and signed before
the clock. A poller reads the community leaderboard (window all, 200 members) through the gateway every
`--poll-ms`; an event is visible when its member's total first reaches the total it makes. Latency =
visible − due; p50 / p99 per rate. Afterwards every member's total must equal 1 + their events (checked).

References measured in the same run:
  unloaded   the same path at 5 events/s: the pipeline's own latency, without queueing;
  bus        raw aiokafka produce → consume round trip on the same broker (KafkaBus's producer settings).

ratio = achieved / offered rate at the highest offered rate (achieved = events / (first → last visible)),
limit 0.9: below it the platform does not keep up with that load and latency grows with the run's length.
Also printed: p99 / bus round-trip p99 at each rate. Exits 0 whatever the figures; appends to results.json.

Scale out (`--gateways N --engagement M`, either > 1): the same run measures two layouts at the same offered
rates, one after the other on the same stack and data. First 1 gateway + 1 engagement process (the unloaded
reference and every rate), then N - 1 more gateway processes and M - 1 more engagement processes are started
beside them: the gateways share the port with SO_REUSEPORT (`qunzhu serve --reuse-port`: the kernel spreads
the load generator's connections over them; the extra ones run no bot-action worker), the engagement
processes share consumer group `engagement`, i.e. the partitions of `chat.events.v1` (the bench waits until
the new ones logged their assignment). Every rate is offered again. Chat events are keyed by community, so
the load comes from K communities (`--communities`, default P) chosen so that together they cover all P
partitions (`--partitions`, default max(M, 2); every topic of the run gets P): communities are created until
each partition has one, the first per partition carries the load, `--members` split over them. Printed and
recorded: achieved events/s per layout and rate, `scale_out.speedup` (N/M ÷ 1/1 at the top rate; with
`--rounds R` the layouts alternate R times and their medians are compared), the CPU each service process, this
process (load generator, poller), the Kafka broker and the run's PostgreSQL backends used during each phase
(share of one CPU), and `scale_out.events_per_cpu_s` (deploy/README.md's sizing input). `ratio` is then
achieved / offered at the top rate of the N/M layout. The correctness check (every total = 1 + its events)
covers both layouts and the rebalances between them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds modules named like the services (bench/membership.py …): it leaves sys.path, the root comes first.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != Path(_HERE)]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from gateway.webhooks.verify import sign_standard  # noqa: E402
from qunzhu.simulator.drive import Driver, Target, bot_bridge  # noqa: E402
from qunzhu.simulator.generate import SimConfig, generate  # noqa: E402
from tests.integration.stack import (  # noqa: E402
    GATEWAY_OPERATOR_KEY,
    STRIPE_WEBHOOK_SECRET,
    Kafka,
    Postgres,
    ServiceProcess,
    Stack,
)

LIMIT = 0.9
RESULTS = Path(__file__).resolve().parent / "results.json"
POM = ROOT / "deploy" / "local" / "kafka" / "pom.xml"


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 2)


def machine_busy_pct(sample_s: float = 1.0) -> float | None:
    def read() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        return sum(fields) - fields[3] - fields[4], sum(fields)  # busy (all but idle, iowait), total

    first = read()
    time.sleep(sample_s)
    second = read()
    if first is None or second is None or second[1] == first[1]:
        return None
    return round(100 * (second[0] - first[0]) / (second[1] - first[1]), 1)


# -- a small keep-alive HTTP/1.1 client: httpx costs more CPU per request than the gateway's ingest ------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


# -- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Probe:
    member: str  # person id
    total: int  # the member's total once this event is scored
    request: bytes
    due: float = 0.0
    sent: float | None = None
    visible: float | None = None
    status: int | None = None


@dataclass
class Board:
    """The leaderboard as the poller last saw it, and when each probe first became visible."""

    pending: dict[str, list[Probe]] = field(default_factory=dict)  # member → their probes not yet seen, in order
    totals: dict[str, int] = field(default_factory=dict)
    reads: int = 0
    errors: int = 0
    read_ms: list[float] = field(default_factory=list)

    def add(self, probe: Probe) -> None:
        self.pending.setdefault(probe.member, []).append(probe)

    def seen(self, totals: dict[str, int], at: float) -> None:
        self.totals = totals
        for member, probes in self.pending.items():
            points = totals.get(member, 0)
            while probes and probes[0].total <= points:
                probes.pop(0).visible = at


async def poll(client: httpx.AsyncClient, url: str, board: Board, interval_s: float, stop: asyncio.Event,
               headers: dict[str, str]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await client.get(url, params={"window": "all", "limit": 200}, headers=headers)
            done = time.monotonic()
            if response.status_code == 200:
                totals = {e["person_id"]: int(e["points"]) for e in response.json()["data"]}
                board.reads += 1
                board.read_ms.append((done - started) * 1000)
                board.seen(totals, done)
            else:
                board.errors += 1
        except (httpx.HTTPError, ValueError, KeyError) as exc:  # a dropped keep-alive, a timeout: read again
            done = time.monotonic()
            board.errors += 1
            if board.errors <= 5:
                log(f"leaderboard read failed: {exc!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, interval_s - (done - started)))


def build(path: str, port: int, secret: str, member: str, day: datetime, group: str) -> bytes:
    uid = member.partition(":")[2]
    body = json.dumps({"type": "message", "group_id": group, "message_id": f"e2e-{uuid.uuid4().hex[:12]}",
                       "sender_id": uid, "text": f"复盘：{day:%m月%d日}的增长实验，转化率提升了{day.day % 9 + 1}%",
                       "timestamp": day.isoformat()}, ensure_ascii=False).encode()
    delivery, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nwebhook-id: {delivery}\r\nwebhook-timestamp: {stamp}\r\n"
            f"webhook-signature: {sign_standard(secret, delivery, stamp, body)}\r\n\r\n")
    return head.encode() + body


async def quiet(args: argparse.Namespace, phase: str) -> float | None:
    """Wait (up to --quiet-timeout) until the machine is below --quiet-below % busy; the last reading.

    The stack is idle between phases, so what keeps the CPUs busy then is other work sharing the machine,
    and figures taken under it belong to that work as much as to Qunzhu (the phase is marked `noisy`).
    """
    deadline = time.monotonic() + args.quiet_timeout
    while True:
        busy = await asyncio.to_thread(machine_busy_pct, 1.0)
        if busy is None or busy <= args.quiet_below or time.monotonic() > deadline:
            if busy is not None and busy > args.quiet_below:
                log(f"{phase}: machine still {busy:.0f}% busy after {args.quiet_timeout:g} s; measuring anyway")
            return busy


async def offer(probes: list[Probe], rate: float, port: int, connections: int) -> None:
    """Open loop: probe i is due at t0 + i/rate and sent on the first free connection."""
    # Last in, first out: at a low rate the same few connections stay busy instead of idling past the
    # server's keep-alive timeout; one that was closed anyway is reopened and the delivery sent again
    # (the same webhook-id: the gateway answers a repeat `duplicate`, without a second effect).
    pool: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open("127.0.0.1", port))

    async def one(probe: Probe, conn: Connection) -> None:
        probe.sent = time.monotonic()
        try:
            probe.status, _ = await conn.send(probe.request)
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            conn.close()
            conn = await Connection.open("127.0.0.1", port)
            probe.status, _ = await conn.send(probe.request)
        finally:
            pool.put_nowait(conn)

    tasks = []
    t0 = time.monotonic() + 0.2
    for i, probe in enumerate(probes):
        probe.due = t0 + i / rate
        delay = probe.due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(probe, await pool.get())))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()


async def bus_round_trip(bootstrap: str, n: int = 200, rate: float = 100) -> dict[str, Any]:
    """Raw aiokafka produce → consume on the same broker: the floor under any event-driven path."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = f"bench-e2e-rtt-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up", partition=0)
        await consumer._client.force_metadata_update()  # noqa: SLF001 - the topic was just created
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, (await consumer.end_offsets([tp]))[tp])
        sent: dict[int, float] = {}
        latencies: list[float] = []

        async def receive() -> None:
            while len(latencies) < n:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    now = time.monotonic()
                    latencies.extend((now - sent[int(r.value)]) * 1000 for r in records if r.value != b"warm-up")

        reader = asyncio.create_task(receive())
        start = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            sent[i] = time.monotonic()
            await producer.send(topic, str(i).encode(), partition=0)
        await asyncio.wait_for(reader, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    return {"events": n, "rate": rate, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


@dataclass
class Tenant:
    """One community of the run: its driver (connector, owner), members, leaderboard and expected totals."""

    driver: Driver
    board: Board
    members: list[str]
    group: str
    partition: int  # of chat.events.v1 (events are keyed by community id)
    next_day: dict[str, int]  # member → the simulated day of their next event
    expected: dict[str, int]  # member → their total once every event built so far is scored

    @property
    def leaderboard(self) -> str:
        return f"/api/v1/engagement/communities/{self.driver.out.community_id}/leaderboard"


@dataclass
class Setup:
    stack: Stack
    tenants: list[Tenant]
    base: datetime
    pollers: list[asyncio.Task[None]] = field(default_factory=list)


def partition_of(key: str, partitions: int) -> int:
    """The partition KafkaBus's producer (aiokafka's default partitioner, murmur2) puts a key on."""
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    return int(DefaultPartitioner()(key.encode(), every, every))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int] | None:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    return sum(values) - values[3] - values[4], sum(values)


def infrastructure(stack: Stack) -> dict[str, list[int]]:
    """The run's other processes: this one (load generator, poller), its Kafka broker, its PostgreSQL backends."""
    groups: dict[str, list[int]] = {"bench": [os.getpid()], "kafka": [], "postgres": []}
    with contextlib.suppress(OSError, ValueError):
        groups["kafka"].append(int((stack.kafka.data_dir / "kafka" / "kafka.pid").read_text()))
    prefix = stack.postgres.prefix.encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if cmdline.startswith(b"postgres: ") and prefix in cmdline:  # a backend of this run's databases
                    groups["postgres"].append(int(proc.name))
    return groups


class CpuMeter:
    """CPU (share of one CPU) of each service process, of the run's other processes (this one, Kafka, the
    PostgreSQL backends of its databases: those alive at the end) and of the machine, between start() and stop()."""

    def __init__(self, processes: dict[str, ServiceProcess], stack: Stack) -> None:
        self.processes, self.stack = processes, stack

    def _sample(self) -> dict[str, dict[int, float]]:
        pids = {name: [p.proc.pid] if p.proc else [] for name, p in self.processes.items()}
        pids.update(infrastructure(self.stack))
        return {name: {pid: cpu for pid in group if (cpu := cpu_seconds(pid)) is not None}
                for name, group in pids.items()}

    def start(self) -> None:
        self.t0, self.machine0 = time.monotonic(), machine_cpu()
        self.cpu0 = self._sample()

    def stop(self) -> dict[str, Any]:
        wall, machine1, now = time.monotonic() - self.t0, machine_cpu(), self._sample()
        shares = {}
        for name, group in now.items():
            if group:  # a backend that connected during the phase counts from 0
                before = self.cpu0.get(name, {})
                used = sum(cpu - before.get(pid, 0.0) for pid, cpu in group.items())
                shares[name] = round(used / max(1e-9, wall), 2)
        busy = None
        if self.machine0 and machine1 and machine1[1] > self.machine0[1]:
            busy = round(100 * (machine1[0] - self.machine0[0]) / (machine1[1] - self.machine0[1]), 1)
        return {"process_cpu": shares, "machine_busy_pct": busy}


async def run_phase(setup: Setup, rate: float, seconds: float, args: argparse.Namespace,
                    processes: dict[str, ServiceProcess]) -> dict[str, Any]:
    gateway = setup.stack["gateway"]
    port = int(gateway.url.rsplit(":", 1)[1])
    count = max(1, round(rate * seconds))
    probes, tenants = [], setup.tenants
    for i in range(count):  # round robin over the communities: each partition gets the same share
        tenant = tenants[i % len(tenants)]
        member = tenant.members[(i // len(tenants)) % len(tenant.members)]
        day = tenant.next_day[member]
        tenant.next_day[member] += 1
        tenant.expected[member] += 1  # each event: +1 (an effective message alone on its simulated day)
        probe = Probe(member=member, total=tenant.expected[member], request=build(
            f"/webhooks/chat/{tenant.driver.out.connector_id}", port, tenant.driver.signing_secret, member,
            setup.base + timedelta(days=day), tenant.group))
        probes.append((tenant, probe))
    busy = await quiet(args, f"{rate:g}/s")
    for tenant, probe in probes:
        tenant.board.add(probe)
    probes = [probe for _, probe in probes]
    log(f"offering {rate:g} events/s for {seconds:g} s ({count} webhooks; machine {busy}% busy before)")
    meter = CpuMeter(processes, setup.stack)
    meter.start()
    await offer(probes, rate, port, args.connections)
    last_sent = max(p.sent or 0 for p in probes)
    deadline = time.monotonic() + args.drain_timeout
    while any(p.visible is None for p in probes) and time.monotonic() < deadline:  # noqa: ASYNC110 - the poller sets it
        for poller in setup.pollers:
            if poller.done():
                raise SystemExit(f"a leaderboard poller stopped: {poller.exception()!r}")
        await asyncio.sleep(0.1)
    cpu = meter.stop()
    seen = [p for p in probes if p.visible is not None]
    statuses: dict[str, int] = {}
    for p in probes:
        statuses[str(p.status)] = statuses.get(str(p.status), 0) + 1
    first_due = probes[0].due
    latencies = [(p.visible - p.due) * 1000 for p in seen]  # type: ignore[operator]
    last_visible = max((p.visible or 0) for p in seen) if seen else float("nan")
    first_visible = min((p.visible or 0) for p in seen) if seen else float("nan")
    result = {
        "offered_per_s": rate, "events": count, "visible": len(seen), "statuses": statuses,
        "sent_per_s": round(count / max(1e-9, last_sent - first_due), 1),
        # Between the first and the last event made visible: the rate the stack really sustained.
        "achieved_per_s": round((len(seen) - 1) / max(1e-9, last_visible - first_visible), 1) if len(seen) > 1
        else 0.0,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": percentile(latencies, 100), "machine_busy_pct_before": busy,
        "noisy": busy is not None and busy > args.quiet_below,
        **cpu,
    }
    log(f"  → {result['achieved_per_s']} events/s visible, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; "
        f"CPU {cpu['process_cpu']}, machine {cpu['machine_busy_pct']}% busy")
    return result


async def prepare(stack: Stack, args: argparse.Namespace, client: httpx.AsyncClient, bridge) -> Setup:  # noqa: ANN001
    """The communities of the run, each set up through the gateway, its members paid and warmed up.

    With P > 1 partitions to cover (scale out), communities are created until each partition of chat.events
    has one; the first per partition is kept, members paid and warmed up (the others stay idle)."""
    target = Target(base_url=stack["gateway"].url, api_key=GATEWAY_OPERATOR_KEY, stripe_secret=STRIPE_WEBHOOK_SECRET)
    wanted = args.communities
    per_community = -(-args.members // wanted)
    cover = args.partitions if args.scale else 1  # partitions the communities must cover
    drivers: dict[int, tuple[Driver, Any]] = {}
    attempt = 0
    while len(drivers) < wanted:
        if attempt >= 8 * wanted:
            raise SystemExit(f"{attempt} communities did not cover {cover} partitions")
        community = generate(SimConfig(groups=1, members_per_group=per_community, days=1, messages=0,
                                       lurker_share=0, spammers=0, refund_share=0, leaders_per_group=0,
                                       seed=args.seed + attempt))
        attempt += 1
        driver = Driver(client, target, community, bridge)
        log(f"setup: community {attempt}: community, connector, owner login, plan, rules")
        await driver.setup()
        partition = partition_of(driver.out.community_id, args.partitions)
        slot = partition % cover if len(drivers) < cover else len(drivers)
        if slot in drivers:
            log(f"  partition {partition} has a community already: this one stays idle")
            continue
        drivers[slot] = (driver, community)
    baseline = await next(iter(drivers.values()))[0].scored()
    base = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0) + timedelta(days=1)
    tenants = []
    gateway = stack["gateway"]
    port = int(gateway.url.rsplit(":", 1)[1])
    for _, (driver, community) in sorted(drivers.items()):
        log(f"setup: {len(community.payments)} Stripe payments")
        await driver.pay()
        members = [p.person_id for p in community.people]
        tenant = Tenant(driver=driver, board=Board(), members=members, group=community.chats[0],
                        partition=partition_of(driver.out.community_id, args.partitions),
                        next_day=dict.fromkeys(members, 0), expected=dict.fromkeys(members, 1))
        tenants.append(tenant)
        # One message each, until engagement scored them all: every member is then known (pending ones wait).
        conn = await Connection.open("127.0.0.1", port)
        for m in members:
            status, body = await conn.send(build(f"/webhooks/chat/{driver.out.connector_id}", port,
                                                 driver.signing_secret, m, base - timedelta(days=1), tenant.group))
            if status != 200:
                raise SystemExit(f"warm-up webhook answered {status}: {body[:300]!r}")
        conn.close()
    first = tenants[0].driver
    await first.wait_scored(baseline, sum(len(t.members) for t in tenants), timeout_s=args.drain_timeout)
    for tenant in tenants:
        page = (await tenant.driver.expect("GET", tenant.leaderboard, params={"window": "all", "limit": 200}))["data"]
        tenant.board.totals = {e["person_id"]: int(e["points"]) for e in page}
        if sorted(tenant.board.totals) != sorted(tenant.members) or set(tenant.board.totals.values()) != {1}:
            raise SystemExit(f"after the warm-up every member should have 1 point: {tenant.board.totals}")
    log(f"communities: {len(tenants)} carrying load on partitions {[t.partition for t in tenants]} "
        f"of {args.partitions}; {attempt - len(tenants)} idle")
    return Setup(stack=stack, tenants=tenants, base=base)


def machine(pg_version: str | None) -> dict[str, Any]:
    cpu, mem = platform.processor() or "unknown", None
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = round(int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemTotal:")).split()[1]) / 1024 / 1024, 1)
    kafka = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "memory_gib": mem,
            "python": platform.python_version(), "kafka": kafka.group(1) if kafka else "unknown",
            "postgresql": pg_version, "database": "postgres",
            "stack": "tests/integration/stack.py: 4 service processes (uvicorn, 1 worker each), Kafka KRaft, "
                     "PostgreSQL, load generator and poller in this process; all on one machine"}


def append_result(entry: dict[str, Any]) -> None:
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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rates = [float(r) for r in args.rates.split(",")]
    if args.scale:  # every topic of the run: the services create theirs, the broker auto-creates the rest
        os.environ["KAFKA_NUM_PARTITIONS"] = str(args.partitions)
    with tempfile.TemporaryDirectory(prefix="qunzhu-bench-e2e-") as tmp:
        kafka, pg = Kafka(data_dir=Path(tmp) / "kafka"), Postgres(prefix=f"qzbench_{uuid.uuid4().hex[:8]}")
        log("starting Kafka and PostgreSQL databases")
        kafka.start()
        try:
            pg.start()
            try:
                (Path(tmp) / "logs").mkdir()
                stack = Stack(kafka, pg, Path(tmp) / "logs")
                stack["engagement"].env["ENGAGEMENT_JOBS_INTERVAL_S"] = "0"  # no periodic jobs during the run
                stack["gateway"].env.update({"GATEWAY_RATE_LIMIT_PER_S": "100000",
                                             "GATEWAY_RATE_LIMIT_BURST": "100000",
                                             "GATEWAY_WEBHOOK_RATE_PER_S": "100000",
                                             "GATEWAY_WEBHOOK_BURST": "100000"})
                if args.scale:
                    for name, svc in stack.services.items():
                        svc.env[f"{name.upper()}_TOPIC_PARTITIONS"] = str(args.partitions)
                    stack["gateway"].args = ["--reuse-port"]  # the replicas started later share its port
                log("starting the four services")
                stack.start()
                replicas: list[ServiceProcess] = []
                try:
                    return await measure(stack, pg, rates, args, replicas, Path(tmp) / "logs")
                finally:
                    for replica in replicas:
                        replica.kill(signal.SIGTERM)
                    stack.stop()
            finally:
                pg.drop()
        finally:
            kafka.stop()


def listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:port (/proc/net/tcp): how many gateway processes accept connections."""
    local = f"0100007F:{port:04X}"
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return -1
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


def assignments(path: Path) -> int:
    """How many times a process logged a new assignment of chat.events partitions (each rebalance logs one)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if "partitions assigned" in line and "chat.events" in line)


async def wait_assigned(path: Path, before: int, within_s: float = 60) -> bool:
    deadline = time.monotonic() + within_s
    while assignments(path) <= before:
        if time.monotonic() > deadline:
            log(f"{path.name}: no new chat.events assignment in {within_s:g} s")
            return False
        await asyncio.sleep(0.5)
    return True


async def wait_listeners(port: int, count: int, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while listeners(port) != count and time.monotonic() < deadline:  # noqa: ASYNC110 - other processes
        await asyncio.sleep(0.2)
    log(f"{listeners(port)} gateway processes listen on port {port}")


async def scale_out(stack: Stack, args: argparse.Namespace, log_dir: Path, replicas: list[ServiceProcess]) -> None:
    """Start gateways 2..N on the first one's port (SO_REUSEPORT) and engagement processes 2..M (same group)."""
    log(f"scaling out to {args.gateways} gateway and {args.engagement} engagement processes")
    started: list[tuple[ServiceProcess, int]] = []
    for name, count in (("gateway", args.gateways), ("engagement", args.engagement)):
        first = stack[name]
        for k in range(2, count + 1):
            replica = ServiceProcess(name, {**first.env, f"{name.upper()}_AUTO_MIGRATE": "false"}, log_dir)
            replica.log_path = log_dir / f"{name}-{k}.log"
            if name == "gateway":
                replica.port, replica.args = first.port, ["--reuse-port"]
                replica.env["GATEWAY_RUN_ACTIONS"] = "false"  # one bot-action worker (deploy/README.md)
            before = assignments(replica.log_path)  # its log holds earlier rounds' lines
            replica.start()
            replicas.append(replica)
            started.append((replica, before))
    for replica, _ in started:
        await asyncio.to_thread(replica.wait_ready)
    await wait_listeners(stack["gateway"].port, args.gateways)
    # A joining consumer rebalances the group: wait until each new engagement process got its chat partitions.
    for replica, before in started:
        if replica.name == "engagement" and not await wait_assigned(replica.log_path, before):
            raise SystemExit(f"{replica.log_path.name}: no chat.events partitions assigned")
    await asyncio.sleep(3)  # the other members finish the rebalance too


async def scale_in(stack: Stack, replicas: list[ServiceProcess]) -> None:
    """Stop the replicas (SIGTERM: a consumer leaves the group after committing what it applied)."""
    log("scaling in to 1 gateway and 1 engagement process")
    first = stack["engagement"]
    before = assignments(first.log_path)
    engagement_left = any(r.name == "engagement" for r in replicas)
    for replica in replicas:
        await asyncio.to_thread(replica.kill, signal.SIGTERM)
    replicas.clear()
    await wait_listeners(stack["gateway"].port, 1)
    if engagement_left:
        await wait_assigned(first.log_path, before)  # the first one takes every partition back
    await asyncio.sleep(3)


def per_cpu_second(load: dict[str, Any], services: set[str]) -> dict[str, float]:
    """Each service process's events per CPU-second: the achieved rate split evenly over that service's
    processes (SO_REUSEPORT and the partitions share it out), divided by the process's CPU share."""
    cpu = {name: share for name, share in load.get("process_cpu", {}).items() if name in services and share >= 0.02}
    count = {base: sum(1 for name in cpu if name.split("-")[0] == base) for base in {n.split("-")[0] for n in cpu}}
    return {name: round(load["achieved_per_s"] / count[name.split("-")[0]] / share, 0) for name, share in cpu.items()}


def layout_of(args: argparse.Namespace, scaled: bool) -> dict[str, int]:
    return {"gateways": args.gateways if scaled else 1, "engagement": args.engagement if scaled else 1}


async def measure(stack: Stack, pg: Postgres, rates: list[float], args: argparse.Namespace,
                  replicas: list[ServiceProcess], log_dir: Path) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(pg.url("gateway", driver="postgresql"))
    pg_version = str(await conn.fetchval("SHOW server_version"))
    await conn.close()
    async with httpx.AsyncClient(timeout=30) as client:
        with bot_bridge() as bridge:
            setup = await prepare(stack, args, client, bridge)
        log("bus reference: raw aiokafka produce → consume round trip")
        bus = await bus_round_trip(stack.kafka.bootstrap)
        stop = asyncio.Event()
        for tenant in setup.tenants:
            owner = {"Authorization": f"Bearer {tenant.driver.out.owner_token}"}  # leaderboards are for members
            setup.pollers.append(asyncio.create_task(poll(client, stack["gateway"].url + tenant.leaderboard,
                                                          tenant.board, args.poll_ms / 1000, stop, owner)))

        def processes() -> dict[str, ServiceProcess]:
            named = {name: svc for name, svc in stack.services.items()}
            named.update({r.log_path.stem: r for r in replicas})
            return named

        rounds: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []  # (1/1 loads, N/M loads)
        try:
            unloaded = await run_phase(setup, 5, 10, args, processes())
            loads = [await run_phase(setup, rate, args.seconds, args, processes()) for rate in rates]
            scaled_loads = None
            if args.scale:
                await scale_out(stack, args, log_dir, replicas)
                scaled_loads = [await run_phase(setup, rate, args.seconds, args, processes()) for rate in rates]
                rounds.append((loads, scaled_loads))
                for _ in range(1, args.rounds):  # alternate the layouts: drifting noise hits both alike
                    await scale_in(stack, replicas)
                    again = [await run_phase(setup, rate, args.seconds, args, processes()) for rate in rates]
                    await scale_out(stack, args, log_dir, replicas)
                    rounds.append((again, [await run_phase(setup, rate, args.seconds, args, processes())
                                           for rate in rates]))
        finally:
            stop.set()
            await asyncio.gather(*setup.pollers)
        # Nothing lost, nothing twice: each member's total is 1 (warm-up) + their events.
        for tenant in setup.tenants:
            final = (await tenant.driver.expect("GET", tenant.leaderboard,
                                                params={"window": "all", "limit": 200}))["data"]
            totals = {e["person_id"]: int(e["points"]) for e in final}
            if totals != tenant.expected:
                wrong = {m: (totals.get(m), n) for m, n in tenant.expected.items() if totals.get(m) != n}
                raise SystemExit(f"totals differ from the events sent (member: (seen, expected)): {wrong}")
    top = (scaled_loads or loads)[-1]
    ratio = round(top["achieved_per_s"] / top["offered_per_s"], 4)
    reads = [ms for t in setup.tenants for ms in t.board.read_ms]
    entry = {
        "benchmark": "e2e", "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(pg_version),
        "parameters": {"rates": rates, "seconds": args.seconds, "members": args.members,
                       "connections": args.connections, "poll_ms": args.poll_ms, "events_per_webhook": 1,
                       **layout_of(args, args.scale),
                       "partitions": args.partitions if args.scale else 3, "communities": len(setup.tenants)},
        "bus_round_trip": bus, "unloaded": unloaded, "loads": loads,
        "poll_read_ms_p50": percentile(reads, 50), "poll_reads": sum(t.board.reads for t in setup.tenants),
        "poll_errors": sum(t.board.errors for t in setup.tenants),
        "p99_over_bus_p99": {str(int(x["offered_per_s"])): round((x["p99_ms"] or 0) / bus["p99_ms"], 1)
                             for x in [unloaded, *loads]} if bus["p99_ms"] else None,
        "noisy": any(x["noisy"] for x in [unloaded, *loads, *(scaled_loads or [])]),
        "ratio": ratio, "limit": LIMIT, "verdict": "PASS" if ratio >= LIMIT else "BELOW",
    }
    if scaled_loads is not None:
        # At the top rate, the median over the rounds of each layout.
        one = round(statistics.median(a[-1]["achieved_per_s"] for a, _ in rounds), 1)
        many = round(statistics.median(b[-1]["achieved_per_s"] for _, b in rounds), 1)
        entry["scale_out"] = {
            "from": layout_of(args, False), "to": layout_of(args, True), "partitions": args.partitions,
            "communities_partitions": [t.partition for t in setup.tenants],
            "loads": scaled_loads, "offered_per_s": loads[-1]["offered_per_s"],
            "rounds": [{"from": a, "to": b} for a, b in rounds[1:]],
            "achieved_from_per_s": one, "achieved_to_per_s": many,
            "speedup": round(many / one, 3) if one else None,
            # Events per second per CPU-second of each service process (its share of the achieved rate ÷ its
            # CPU share, top rate): what one process would carry with a CPU of its own (deploy/README.md).
            "events_per_cpu_s": {layout: per_cpu_second(x[-1], set(processes()))
                                 for layout, x in (("from", rounds[0][0]), ("to", rounds[0][1]))},
        }
        entry["ratio_1x1"] = round(one / loads[-1]["offered_per_s"], 4)
    return entry


def report(entry: dict[str, Any]) -> None:
    bus = entry["bus_round_trip"]
    scale = entry.get("scale_out")
    print()
    print("e2e benchmark: signed chat webhook → points visible on the leaderboard (distributed stack)")
    print(f"{'layout':>8}{'offered/s':>10}{'sent/s':>9}{'visible/s':>11}{'events':>8}{'p50 ms':>10}{'p99 ms':>10}"
          f"{'p99/bus':>9}  CPU per process (share of one CPU)")
    rows = [("1/1", x) for x in [entry["unloaded"], *entry["loads"]]]
    if scale:
        to = f"{scale['to']['gateways']}/{scale['to']['engagement']}"
        rows += [(to, x) for x in scale["loads"]]
        for k, again in enumerate(scale.get("rounds", []), 2):
            rows += [(f"1/1 #{k}", x) for x in again["from"]] + [(f"{to} #{k}", x) for x in again["to"]]
    for layout, x in rows:
        over = (entry["p99_over_bus_p99"] or {}).get(str(int(x["offered_per_s"])), "-") if layout == "1/1" else "-"
        cpu = " ".join(f"{k} {v:.2f}" for k, v in sorted(x.get("process_cpu", {}).items()) if v >= 0.05)
        print(f"{layout:>8}{x['offered_per_s']:>10g}{x['sent_per_s']:>9.0f}{x['achieved_per_s']:>11.1f}{x['events']:>8}"
              f"{x['p50_ms'] or 0:>10.0f}{x['p99_ms'] or 0:>10.0f}{over:>9}  {cpu}")
    print(f"bus round trip (raw aiokafka, {bus['rate']:g}/s): p50 {bus['p50_ms']} ms, p99 {bus['p99_ms']} ms; "
          f"leaderboard read p50 {entry['poll_read_ms_p50']} ms (poll every {entry['parameters']['poll_ms']} ms)")
    if scale:
        rounds = 1 + len(scale.get("rounds", []))
        print(f"scale out at {scale['offered_per_s']:g}/s offered: 1 gateway + 1 engagement "
              f"{scale['achieved_from_per_s']}/s → {scale['to']['gateways']} gateways + "
              f"{scale['to']['engagement']} engagement {scale['achieved_to_per_s']}/s: ×{scale['speedup']} "
              f"({'median of ' + str(rounds) + ' rounds; ' if rounds > 1 else ''}{scale['partitions']} partitions; "
              f"load on {scale['communities_partitions']})")
        for layout, per in scale["events_per_cpu_s"].items():
            print(f"  events/s per CPU-second of each process ({scale[layout]['gateways']}/"
                  f"{scale[layout]['engagement']}, first round): "
                  + ", ".join(f"{name} {rate:,.0f}" for name, rate in sorted(per.items())))
    top = (scale["loads"] if scale else entry["loads"])[-1]
    print(f"ratio = achieved / offered at {top['offered_per_s']:g}/s = {entry['ratio']}  "
          f"limit {entry['limit']}  {entry['verdict']}")
    if entry["noisy"]:
        print("noisy: other work kept the machine busy before a phase (machine_busy_pct_before); "
              "compare with care")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,1000", help="offered loads, events/s, comma separated")
    parser.add_argument("--seconds", type=float, default=5, help="how long each load is offered")
    parser.add_argument("--members", type=int, default=200, help="members sending (≤ 200 per community: one "
                        "leaderboard page); split over the communities")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--poll-ms", type=float, default=100, help="leaderboard poll period (per community)")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for a load to be visible")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gateways", type=int, default=1, help="gateway processes of the scaled layout")
    parser.add_argument("--engagement", type=int, default=1, help="engagement processes of the scaled layout")
    parser.add_argument("--partitions", type=int, default=0, help="partitions of every topic when scaling out "
                        "(default max(--engagement, 2))")
    parser.add_argument("--communities", type=int, default=0, help="communities carrying the load (default: "
                        "--partitions when scaling out, else 1)")
    parser.add_argument("--rounds", type=int, default=1, help="scale out: measure the two layouts this many "
                        "times each, alternating (1/1, N/M, 1/1, N/M, …); the speed-up compares their medians")
    parser.add_argument("--quiet-below", type=float, default=25, help="wait for the machine below this %% busy")
    parser.add_argument("--quiet-timeout", type=float, default=120, help="… for at most this many seconds")
    parser.add_argument("--label", default="", help="a note stored with the record (e.g. what else ran)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.json")
    args = parser.parse_args()
    if min(args.gateways, args.engagement) < 1:
        parser.error("--gateways and --engagement must be ≥ 1")
    args.scale = args.gateways > 1 or args.engagement > 1
    args.partitions = args.partitions or max(args.engagement, 2)
    args.communities = args.communities or (args.partitions if args.scale else 1)
    if not 1 <= -(-args.members // args.communities) <= 200:
        parser.error("--members must be 1–200 per community")
    entry = asyncio.run(main(args))
    if args.label:
        entry["label"] = args.label
    report(entry)
    if not args.no_record:
        append_result(entry)
        print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    cli()
