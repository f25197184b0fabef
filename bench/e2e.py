"""End-to-end benchmark: a signed chat webhook → points visible on the leaderboard, on the distributed stack.

    .venv/bin/python bench/e2e.py [--rates 200,1000] [--seconds 5] [--members 200] [--connections 64]

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
from tests.integration.stack import GATEWAY_OPERATOR_KEY, STRIPE_WEBHOOK_SECRET, Kafka, Postgres, Stack  # noqa: E402

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
class Setup:
    stack: Stack
    driver: Driver
    board: Board
    members: list[str]
    next_day: dict[str, int]  # member → the simulated day of their next event
    expected: dict[str, int]  # member → their total once every event built so far is scored
    base: datetime
    group: str
    poller: asyncio.Task[None] | None = None


async def run_phase(setup: Setup, rate: float, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    gateway = setup.stack["gateway"]
    port = int(gateway.url.rsplit(":", 1)[1])
    path = f"/webhooks/chat/{setup.driver.out.connector_id}"
    count = max(1, round(rate * seconds))
    probes = []
    for i in range(count):
        member = setup.members[i % len(setup.members)]
        day = setup.next_day[member]
        setup.next_day[member] += 1
        setup.expected[member] += 1  # each event: +1 (an effective message alone on its simulated day)
        probes.append(Probe(member=member, total=setup.expected[member], request=build(
            path, port, setup.driver.signing_secret, member, setup.base + timedelta(days=day), setup.group)))
    busy = await quiet(args, f"{rate:g}/s")
    for probe in probes:
        setup.board.add(probe)
    log(f"offering {rate:g} events/s for {seconds:g} s ({count} webhooks; machine {busy}% busy before)")
    await offer(probes, rate, port, args.connections)
    last_sent = max(p.sent or 0 for p in probes)
    deadline = time.monotonic() + args.drain_timeout
    while any(p.visible is None for p in probes) and time.monotonic() < deadline:  # noqa: ASYNC110 - the poller sets it
        if setup.poller is not None and setup.poller.done():
            raise SystemExit(f"the leaderboard poller stopped: {setup.poller.exception()!r}")
        await asyncio.sleep(0.1)
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
    }
    log(f"  → {result['achieved_per_s']} events/s visible, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    return result


async def prepare(stack: Stack, args: argparse.Namespace, client: httpx.AsyncClient, bridge) -> Setup:  # noqa: ANN001
    community = generate(SimConfig(groups=1, members_per_group=args.members, days=1, messages=0, lurker_share=0,
                                   spammers=0, refund_share=0, leaders_per_group=0, seed=args.seed))
    target = Target(base_url=stack["gateway"].url, api_key=GATEWAY_OPERATOR_KEY, stripe_secret=STRIPE_WEBHOOK_SECRET)
    driver = Driver(client, target, community, bridge)
    log("setup: community, connector, owner login, plan, rules")
    await driver.setup()
    baseline = await driver.scored()
    log(f"setup: {len(community.payments)} Stripe payments")
    await driver.pay()
    members = [p.person_id for p in community.people]
    base = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0) + timedelta(days=1)
    board = Board()
    setup = Setup(stack=stack, driver=driver, board=board, members=members, next_day=dict.fromkeys(members, 0),
                  expected=dict.fromkeys(members, 1), base=base, group=community.chats[0])
    # One message each, until engagement scored them all: every member is then known (pending ones wait).
    gateway = stack["gateway"]
    port = int(gateway.url.rsplit(":", 1)[1])
    warm = [build(f"/webhooks/chat/{driver.out.connector_id}", port, driver.signing_secret, m,
                  base - timedelta(days=1), setup.group) for m in members]
    conn = await Connection.open("127.0.0.1", port)
    for request in warm:
        status, body = await conn.send(request)
        if status != 200:
            raise SystemExit(f"warm-up webhook answered {status}: {body[:300]!r}")
    conn.close()
    await driver.wait_scored(baseline, len(members), timeout_s=args.drain_timeout)
    url = f"{gateway.url}/api/v1/engagement/communities/{driver.out.community_id}/leaderboard"
    page = await driver.expect("GET", url.removeprefix(gateway.url), params={"window": "all", "limit": 200})
    page = page["data"]
    board.totals = {e["person_id"]: int(e["points"]) for e in page}
    if sorted(board.totals) != sorted(members) or set(board.totals.values()) != {1}:
        raise SystemExit(f"after the warm-up every member should have 1 point: {board.totals}")
    return setup


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
                log("starting the four services")
                stack.start()
                try:
                    return await measure(stack, pg, rates, args)
                finally:
                    stack.stop()
            finally:
                pg.drop()
        finally:
            kafka.stop()


async def measure(stack: Stack, pg: Postgres, rates: list[float], args: argparse.Namespace) -> dict[str, Any]:
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
        url = f"{stack['gateway'].url}/api/v1/engagement/communities/{setup.driver.out.community_id}/leaderboard"
        owner = {"Authorization": f"Bearer {setup.driver.out.owner_token}"}  # leaderboards are for members
        poller = setup.poller = asyncio.create_task(poll(client, url, setup.board, args.poll_ms / 1000, stop, owner))
        try:
            unloaded = await run_phase(setup, 5, 10, args)
            loads = [await run_phase(setup, rate, args.seconds, args) for rate in rates]
        finally:
            stop.set()
            await poller
        # Nothing lost, nothing twice: each member's total is 1 (warm-up) + their events.
        final = (await setup.driver.expect("GET", url.removeprefix(stack["gateway"].url),
                                           params={"window": "all", "limit": 200}))["data"]
        totals = {e["person_id"]: int(e["points"]) for e in final}
        expected = setup.expected
        if totals != expected:
            wrong = {m: (totals.get(m), expected[m]) for m in expected if totals.get(m) != expected[m]}
            raise SystemExit(f"totals differ from the events sent (member: (seen, expected)): {wrong}")
    top = loads[-1]
    ratio = round(top["achieved_per_s"] / top["offered_per_s"], 4)
    return {
        "benchmark": "e2e", "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(pg_version),
        "parameters": {"rates": rates, "seconds": args.seconds, "members": args.members,
                       "connections": args.connections, "poll_ms": args.poll_ms, "events_per_webhook": 1},
        "bus_round_trip": bus, "unloaded": unloaded, "loads": loads,
        "poll_read_ms_p50": percentile(setup.board.read_ms, 50), "poll_reads": setup.board.reads,
        "poll_errors": setup.board.errors,
        "p99_over_bus_p99": {str(int(x["offered_per_s"])): round((x["p99_ms"] or 0) / bus["p99_ms"], 1)
                             for x in [unloaded, *loads]} if bus["p99_ms"] else None,
        "noisy": any(x["noisy"] for x in [unloaded, *loads]),
        "ratio": ratio, "limit": LIMIT, "verdict": "PASS" if ratio >= LIMIT else "BELOW",
    }


def report(entry: dict[str, Any]) -> None:
    bus = entry["bus_round_trip"]
    print()
    print("e2e benchmark: signed chat webhook → points visible on the leaderboard (distributed stack)")
    print(f"{'offered/s':>10}{'sent/s':>9}{'visible/s':>11}{'events':>8}{'p50 ms':>10}{'p99 ms':>10}{'p99/bus':>9}")
    for x in [entry["unloaded"], *entry["loads"]]:
        over = (entry["p99_over_bus_p99"] or {}).get(str(int(x["offered_per_s"])), "-")
        print(f"{x['offered_per_s']:>10g}{x['sent_per_s']:>9.0f}{x['achieved_per_s']:>11.1f}{x['events']:>8}"
              f"{x['p50_ms'] or 0:>10.0f}{x['p99_ms'] or 0:>10.0f}{over:>9}")
    print(f"bus round trip (raw aiokafka, {bus['rate']:g}/s): p50 {bus['p50_ms']} ms, p99 {bus['p99_ms']} ms; "
          f"leaderboard read p50 {entry['poll_read_ms_p50']} ms (poll every {entry['parameters']['poll_ms']} ms)")
    print(f"ratio = achieved / offered at {entry['loads'][-1]['offered_per_s']:g}/s = {entry['ratio']}  "
          f"limit {entry['limit']}  {entry['verdict']}")
    if entry["noisy"]:
        print("noisy: other work kept the machine busy before a phase (machine_busy_pct_before); "
              "compare with care")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,1000", help="offered loads, events/s, comma separated")
    parser.add_argument("--seconds", type=float, default=5, help="how long each load is offered")
    parser.add_argument("--members", type=int, default=200, help="members sending (≤ 200: one leaderboard page)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--poll-ms", type=float, default=100, help="leaderboard poll period")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for a load to be visible")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet-below", type=float, default=25, help="wait for the machine below this %% busy")
    parser.add_argument("--quiet-timeout", type=float, default=120, help="… for at most this many seconds")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.json")
    args = parser.parse_args()
    if not 1 <= args.members <= 200:
        parser.error("--members must be 1–200")
    entry = asyncio.run(main(args))
    report(entry)
    if not args.no_record:
        append_result(entry)
        print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    cli()
