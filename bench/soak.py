"""Soak: the community week through embedded mode from 8 concurrent senders, with the bot bridge down for a
third of the run and slow (past the gateway's action timeout) for another third (issue #19).

    .venv/bin/python bench/soak.py [--mode embedded|distributed|both] [--senders 8] [--groups 3]
                                   [--members 200] [--days 14] [--messages 1500] [--seed 7] [--timeout 30]
                                   [--label TEXT] [--no-record]

What runs. `python -m qunzhu run` (embedded mode: one process, SQLite, the in-process bus) as a child process
on a free loopback port (qunzhu.simulator.demo.embedded), and the demo's simulated community (3 groups × 200
members, 14 days compressed: messages, check-ins, homework, reactions, joins, red packets; Stripe payments).
Setup and payments go as in `make demo`; then every chat event is one signed Standard Webhooks delivery,
sent by `--senders` concurrent senders taking deliveries in order from one queue. A sender that gets a 5xx,
a timeout (`--timeout`, a platform's webhook timeout) or a broken connection sends the same delivery again
(same `webhook-id`, as a platform retries) after 0.5 s. Every 25th delivery a sender also asks for a login
code, which the gateway sends through the bot bridge (bot actions keep being attempted and retried).

The bot bridge (this process, http://127.0.0.1) is **down** for the first third of the deliveries (it
drops each connection), **slow** for the second third (answers after the gateway's action timeout + 1 s)
and **up** for the last third.

Figures. Webhook latency p50 / p99 / max (send → answer, every attempt; also split by the bridge's mode),
count of 5xx and of timeouts; after
the run, **lost** = events sent − events engagement scored (its own counter, waited for up to 10 minutes),
**doubled** = scored − sent when positive, and the gateway's accepted event count against the events sent.
Goals: 0 5xx, 0 lost, 0 doubled, p99 < 250 ms, max < 2 s. Appends a record to bench/results.json; exits 0
whatever the figures (a miss is a finding). Never run by the tests. `--mode distributed` runs the same
load against the four services as processes on PostgreSQL and a Kafka broker of their own (as bench/e2e.py
starts them: tests/integration/stack.py); `both` runs one after the other into one record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "platform"))

import httpx  # noqa: E402

from qunzhu.simulator.demo import embedded  # noqa: E402
from qunzhu.simulator.drive import Bridge, Driver  # noqa: E402
from qunzhu.simulator.generate import SimConfig, generate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
GOALS = {"5xx": 0, "lost": 0, "doubled": 0, "p99_ms": 250, "max_ms": 2000}
ACTION_TIMEOUT_S = 10.0  # GatewaySettings.action_timeout_s's default


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 1)


@dataclass
class SwitchableBridge(Bridge):
    """The demo's bot bridge with a mode: up, down (drops the connection), slow (answers too late)."""

    mode: str = "up"
    slow_s: float = ACTION_TIMEOUT_S + 1
    seen: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0, "slow": 0})


@contextlib.contextmanager
def switchable_bridge():  # noqa: ANN201
    from gateway.webhooks.verify import verify_standard

    bridge = SwitchableBridge()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            mode = bridge.mode
            bridge.seen[mode] += 1
            if mode == "down":
                self.close_connection = True  # no answer at all: the gateway sees a broken connection
                return
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if mode == "slow":
                time.sleep(bridge.slow_s)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verify_standard(headers, body, [bridge.secret], tolerance_s=300)
            except Exception:  # noqa: BLE001 - a forged or stale action is refused like a real bridge would
                bridge.forged += 1
                self.send_response(401)
            else:
                bridge.actions.append(json.loads(body).get("data", {}))
                self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    bridge.url = f"http://127.0.0.1:{server.server_address[1]}/actions"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="qunzhu-soak-bridge")
    thread.start()
    try:
        yield bridge
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    phase_latencies_ms: dict[str, list[float]] = field(default_factory=dict)  # by the bridge's mode
    statuses: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    timeouts: int = 0
    broken: int = 0
    retries: int = 0
    accepted_events: int = 0
    duplicates: int = 0
    login_codes_asked: int = 0

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def soak(driver: Driver, bridge: SwitchableBridge, args: argparse.Namespace) -> Tally:
    from gateway.webhooks.verify import sign_standard

    items = driver.c.items
    path = driver.target.base_url + f"/webhooks/chat/{driver.out.connector_id}"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(items)):
        queue.put_nowait(i)
    tally = Tally()
    third = len(items) / 3
    delivery_ids = [f"soak_{driver.c.config.tag}_{i}" for i in range(len(items))]
    payers = sorted({p.payer.person_id for p in driver.c.payments})

    def phase_of(i: int) -> str:
        return "down" if i < third else ("slow" if i < 2 * third else "up")

    def took(i: int, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        tally.latencies_ms.append(ms)
        tally.phase_latencies_ms.setdefault(phase_of(i), []).append(ms)

    async def send(client: httpx.AsyncClient, i: int) -> None:
        body = json.dumps({"events": [items[i]]}, ensure_ascii=False).encode()
        while True:
            stamp = int(time.time())
            headers = {"webhook-id": delivery_ids[i], "webhook-timestamp": str(stamp),
                       "content-type": "application/json",
                       "webhook-signature": sign_standard(driver.signing_secret, delivery_ids[i], stamp, body)}
            started = time.perf_counter()
            try:
                answer = await client.post(path, content=body, headers=headers, timeout=args.timeout)
            except httpx.TimeoutException:
                took(i, started)
                tally.timeouts += 1
                tally.count("timeout")
            except httpx.TransportError:
                tally.broken += 1
                tally.count("broken")
            else:
                took(i, started)
                tally.count(str(answer.status_code))
                if answer.status_code < 500:
                    data = answer.json() if answer.content else {}
                    if data.get("status") == "accepted":
                        tally.accepted_events += int(data.get("events", 0))
                    elif data.get("status") == "duplicate":
                        tally.duplicates += 1
                    return
                tally.server_errors += 1
            tally.retries += 1
            await asyncio.sleep(0.5)  # a platform retries the same delivery

    async def sender(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            bridge.mode = phase_of(i)
            if i % 25 == 0 and payers:  # keeps bot actions going: the gateway sends codes through the bridge
                member = payers[(i // 25) % len(payers)]
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(driver.target.base_url + "/api/v1/auth/codes", timeout=args.timeout, json={
                        "community_id": driver.out.community_id, "member_id": member})
                    tally.login_codes_asked += 1
            await send(client, i)
            if i and i % 1000 == 0:
                log(f"{i} of {len(items)} deliveries sent (bridge {bridge.mode})")

    limits = httpx.Limits(max_connections=args.senders * 2, max_keepalive_connections=args.senders * 2)
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(args.senders)))
    bridge.mode = "up"
    return tally


async def wait_scored(driver: Driver, baseline: float, expected: int, timeout_s: float = 600) -> int:
    """Engagement's scored count over the baseline once it reached `expected` and stayed (or the deadline)."""
    deadline, last, stable_since = time.monotonic() + timeout_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = int(await driver.scored() - baseline)
        if now != last:
            last, stable_since = now, time.monotonic()
        if now >= expected and time.monotonic() - stable_since > 5:  # and nothing more arrives
            return now
        await asyncio.sleep(0.5)
    return last


async def write_gate_figures(driver: Driver) -> dict[str, Any]:
    """Each service's SQLite write gate over the run: transactions, mean wait and timeouts per priority."""
    from prometheus_client.parser import text_string_to_metric_families

    figures: dict[str, Any] = {}
    for service in ("gateway", "membership", "content", "engagement"):
        path = "/metrics" if service == "gateway" else f"/services/{service}/metrics"
        response = await driver.call("GET", path, auth=None)
        samples = [s for fam in text_string_to_metric_families(response.text) for s in fam.samples
                   if s.name.startswith(("qunzhu_db_write_wait_seconds_", "qunzhu_db_write_timeouts_total"))]
        mine: dict[str, Any] = {}
        for priority in ("request", "background"):
            def value(name: str, priority: str = priority, samples: list = samples) -> float:
                return sum(s.value for s in samples if s.name == name and s.labels.get("priority") == priority)
            count = value("qunzhu_db_write_wait_seconds_count")
            mine[priority] = {
                "transactions": int(count), "timeouts": int(value("qunzhu_db_write_timeouts_total")),
                "mean_wait_ms": round(1000 * value("qunzhu_db_write_wait_seconds_sum") / count, 2) if count else None,
            }
        figures[service] = mine
    return figures


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


@contextlib.asynccontextmanager
async def distributed():  # noqa: ANN201
    """The four services as processes on PostgreSQL and a Kafka broker of their own (tests/integration/stack.py,
    as bench/e2e.py starts them); yields (Target, log_tail)."""
    import tempfile
    import uuid

    sys.path.insert(0, str(ROOT))
    from qunzhu.simulator.drive import Target
    from tests.integration.stack import GATEWAY_OPERATOR_KEY, STRIPE_WEBHOOK_SECRET, Kafka, Postgres, Stack

    with tempfile.TemporaryDirectory(prefix="qunzhu-bench-soak-") as tmp:
        kafka, pg = Kafka(data_dir=Path(tmp) / "kafka"), Postgres(prefix=f"qzsoak_{uuid.uuid4().hex[:8]}")
        log("starting Kafka and PostgreSQL databases")
        kafka.start()
        try:
            pg.start()
            try:
                (Path(tmp) / "logs").mkdir()
                stack = Stack(kafka, pg, Path(tmp) / "logs")
                stack["engagement"].env["ENGAGEMENT_JOBS_INTERVAL_S"] = "0"
                stack["gateway"].env.update({"GATEWAY_RATE_LIMIT_PER_S": "2000", "GATEWAY_RATE_LIMIT_BURST": "2000"})
                log("starting the four services")
                stack.start()
                try:
                    target = Target(base_url=stack["gateway"].url, api_key=GATEWAY_OPERATOR_KEY,
                                    stripe_secret=STRIPE_WEBHOOK_SECRET)
                    yield target, lambda: stack["gateway"].log_tail(5)
                finally:
                    stack.stop()
            finally:
                pg.drop()
        finally:
            kafka.stop()


@contextlib.asynccontextmanager
async def embedded_mode():  # noqa: ANN201
    async with embedded() as process:
        yield process.target, lambda: process.log_tail(5)


async def run_mode(mode: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    config = SimConfig(groups=args.groups, members_per_group=args.members, days=args.days, messages=args.messages,
                       seed=args.seed, tag=f"soak{args.seed}-{os.urandom(3).hex()}")
    community = generate(config)
    log(f"{len(community.items)} chat events, {len(community.payments)} payments; starting {mode} mode")
    async with (embedded_mode() if mode == "embedded" else distributed()) as (target, tail):
        with switchable_bridge() as bridge:
            async with httpx.AsyncClient(timeout=60) as client:
                driver = Driver(client, target, community, bridge)
                await driver.setup()
                baseline = await driver.scored()
                await driver.pay()
                log(f"setup and payments done; {args.senders} senders, bridge down → slow → up")
                started = time.monotonic()
                tally = await soak(driver, bridge, args)
                seconds = time.monotonic() - started
                log(f"{len(community.items)} deliveries in {seconds:.1f} s; waiting for engagement to score them")
                scored = await wait_scored(driver, baseline, len(community.items))
                gate = await write_gate_figures(driver) if mode == "embedded" else None
            log_tail = tail()
    sent = len(community.items)
    figures = {
        "deliveries": sent, "seconds": round(seconds, 1), "rate_per_s": round(sent / seconds, 1),
        "p50_ms": percentile(tally.latencies_ms, 50), "p99_ms": percentile(tally.latencies_ms, 99),
        "max_ms": percentile(tally.latencies_ms, 100), "5xx": tally.server_errors, "timeouts": tally.timeouts,
        "broken_connections": tally.broken, "retries": tally.retries, "statuses": tally.statuses,
        "accepted_events": tally.accepted_events, "duplicate_answers": tally.duplicates,
        "scored": scored, "lost": max(0, sent - scored), "doubled": max(0, scored - sent),
        "bridge_calls": dict(bridge.seen), "login_codes_asked": tally.login_codes_asked,
        # where the tail is: latency while the bridge was down, slow (past the action timeout) and up
        "by_bridge_mode": {mode: {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
                                  "max_ms": percentile(ms, 100)} for mode, ms in tally.phase_latencies_ms.items()},
    }
    if gate is not None:
        figures["write_gate"] = gate
    return figures, log_tail


async def main(args: argparse.Namespace) -> dict[str, Any]:
    modes = ["embedded", "distributed"] if args.mode == "both" else [args.mode]
    results: dict[str, Any] = {}
    met: dict[str, bool] = {}
    for mode in modes:
        figures, log_tail = await run_mode(mode, args)
        results[mode] = figures
        mine = {k: figures[k] is not None and figures[k] <= goal for k, goal in GOALS.items()}
        met.update({f"{mode}.{k}": ok for k, ok in mine.items()})
        if not all(mine.values()):
            log(f"{mode}: goals missed: " + ", ".join(k for k, ok in mine.items() if not ok)
                + f"\nlast log lines:\n{log_tail}")
    entry = {
        "benchmark": "soak", "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "parameters": {"mode": args.mode, "senders": args.senders, "groups": args.groups, "members": args.members,
                       "days": args.days, "messages": args.messages, "seed": args.seed, "timeout_s": args.timeout,
                       "label": args.label},
        **results, "goals": GOALS, "met": met,
        "verdict": "pass" if all(met.values()) else "below",
    }
    print(json.dumps(entry, indent=2, ensure_ascii=False))
    if args.record:
        append_result(entry)
    return entry


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["embedded", "distributed", "both"], default="embedded",
                        help="distributed: four processes on PostgreSQL and Kafka (needs Java and PostgreSQL)")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=30.0, help="a platform's webhook timeout (s)")
    parser.add_argument("--label", default="", help="recorded with the figures (e.g. which code ran)")
    parser.add_argument("--no-record", dest="record", action="store_false")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
