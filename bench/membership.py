"""Membership benchmark: paid activations through the real consumer, then expiry by several replicas,
on PostgreSQL.

    .venv/bin/python bench/membership.py [--members 2000] [--concurrency 8] [--replicas 3] [--duplicates 0.1]

A fresh database on the local PostgreSQL cluster (deploy/local/postgres.sh, loopback only) is migrated
with membership's alembic history; untimed, a paid community with enough groups is created and
`--members` people join it (pending_payment). No bus: events go straight into membership's real
`EventConsumer` (registry validation, inbox claim, handler, one transaction each), `--concurrency` at a
time, as partitions would deliver them.

Timed:
  payments    `--members` `payment.succeeded` events plus `--duplicates` × as many redeliveries, shuffled:
              each first delivery activates a member (payment row, ledger entries, seat, member event,
              revenue event); each duplicate is skipped by the inbox.
  reference   the same number of events through an EventConsumer whose handler does nothing: the inbox
              claim and its transaction alone, the floor of any exactly-once effect on this database.
  expiry      the clock moves past every end; `--replicas` schedulers (each its own connection pool, as
              replicas are) expire everyone at once; time to drain, and who did what.

Verified afterwards (else the benchmark fails rather than report): one payment, one activation and one
expiry per member, one remove command per member, no duplicate effects, the ledger reconciled.

ratio = payments rate / reference rate, limit 0.05. A first delivery of a payment runs 25 statements in its
transaction (12 SELECT, 7 INSERT, 5 UPDATE: payment, 2 ledger entries, seat, membership, 2 outbox events,
inbox…) where the floor runs 2, so a statement-bound run gives ≈ 0.08; below 0.05 something beyond the
statements costs. The script exits 0 whatever the figures and appends them to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the service's package: keep bench/ off the path so `import membership` finds the service.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.integration.stack (the database tooling)

RESULTS = Path(__file__).resolve().parent / "results.json"
LIMIT = 0.05
OWNER = "wecom:bench-owner"
START = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def deliver_all(consumer, envelopes, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    from qunzhu_common.bus.base import Record

    queue: asyncio.Queue = asyncio.Queue()
    for envelope in envelopes:
        queue.put_nowait(envelope)

    async def worker() -> None:
        while not queue.empty():
            envelope = queue.get_nowait()
            record = Record(topic="payments.events.v1", partition=0, offset=0, key=envelope.community_id,
                            value=envelope.to_bytes())
            for attempt in range(20):  # the bus retries a handler that lost a race
                try:
                    await consumer(record)
                    break
                except Exception:
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.01 * (attempt + 1))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def measure(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import httpx
    from sqlalchemy import text

    from membership.app import create_app
    from membership.clock import FakeClock
    from membership.jobs import Scheduler
    from membership.models import Membership, inbox_table
    from membership.settings import MembershipSettings
    from qunzhu_common.bus.local import LocalBus
    from qunzhu_common.db.engine import create_engine, create_session_maker
    from qunzhu_common.events.contracts.payments import PaymentSucceeded
    from qunzhu_common.events.envelope import new_envelope
    from qunzhu_common.inbox import EventConsumer
    from qunzhu_common.testing import GatewayActorAuth, app_internal_key

    clock = FakeClock(START)
    bus = LocalBus(tmp / "bus.sqlite3")
    await bus.start()
    settings = MembershipSettings(data_dir=tmp, database_url=url, run_consumers=False, run_scheduler=False,
                                  run_relay=False, scheduler_batch_size=200)
    app = create_app(settings, bus=bus, clock=clock)
    figures: dict[str, Any] = {}
    try:
        async with app.router.lifespan_context(app):
            runtime, ctx = app.state.runtime, app.state.membership
            signer = GatewayActorAuth(lambda: app_internal_key(app))  # callers as the gateway vouches for them
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b",
                                         auth=signer) as client:
                headers = {"X-Actor-Id": OWNER}
                cid = (await client.post("/communities", headers=headers, json={
                    "name": "bench", "positioning": "p", "entry_policies": ["paid"]})).json()["id"]
                plan = (await client.post(f"/communities/{cid}/plans", headers=headers, json={
                    "name": "年费", "price_fen": 100_000, "term_type": "fixed_duration",
                    "duration_days": 365})).json()
                for g in range(args.members // 500 + 1):
                    await client.post(f"/communities/{cid}/groups", headers=headers,
                                      json={"platform": "wecom", "external_id": f"bench-{g}"})
            people = [f"wecom:b{i}" for i in range(args.members)]
            async with runtime.session_maker() as session, session.begin():
                session.add_all([Membership(community_id=cid, member_id=p, status="pending_payment",
                                            created_at=START, changed_at=START) for p in people])
            payments = [new_envelope(type="payment.succeeded", source="bench", community_id=cid,
                                     data=PaymentSucceeded(payment_id=f"pay-{p}", provider="wechatpay", payer_id=p,
                                                           plan_id=plan["id"], amount_fen=100_000, paid_at=START))
                        for p in people]
            rng = random.Random(7)
            deliveries = payments + rng.sample(payments, int(len(payments) * args.duplicates))
            rng.shuffle(deliveries)

            log(f"payments: {len(deliveries)} deliveries ({len(payments)} payments)")
            payments_s = await deliver_all(runtime.consumer, deliveries, args.concurrency)

            async def nothing(session, event) -> None:  # type: ignore[no-untyped-def]
                return None

            floor = EventConsumer(group_id="bench-floor", session_maker=runtime.session_maker,
                                  inbox_table=inbox_table, registry=runtime.registry,
                                  handlers={"payment.succeeded": nothing})
            references = deliveries  # the same records, duplicates included (another consumer group's inbox)
            log(f"reference: {len(references)} deliveries through an inbox-only consumer")
            reference_s = await deliver_all(floor, references, args.concurrency)

            clock.set(START + timedelta(days=400))
            engines = [create_engine(url) for _ in range(args.replicas)]
            replicas = [Scheduler(ctx, create_session_maker(e)) for e in engines]
            log(f"expiry: {args.replicas} replicas")
            started = time.perf_counter()
            done = await asyncio.gather(*(r.run_once() for r in replicas))
            expiry_s = time.perf_counter() - started
            await asyncio.gather(*(e.dispose() for e in engines))

            async with runtime.session_maker() as session:
                async def one(sql: str) -> Any:
                    return (await session.execute(text(sql))).scalar()

                checks = {
                    "payments": await one("SELECT count(*) FROM payment"),
                    "activations": await one("SELECT count(*) FROM outbox WHERE event_type = 'member.activated'"),
                    "expirations": await one("SELECT count(*) FROM outbox WHERE event_type = 'member.expired'"),
                    "remove_commands": await one(
                        "SELECT count(*) FROM outbox WHERE event_type = 'chat.action.requested' "
                        "AND convert_from(payload, 'UTF8') LIKE '%remove_member%'"),
                    "ledger_total_fen": await one("SELECT coalesce(sum(amount_fen), 0) FROM ledger_entry"),
                    "still_live": await one("SELECT count(*) FROM membership WHERE role = 'member' "
                                            "AND status IN ('active', 'pending_ritual')"),
                }
            expected = {"payments": args.members, "activations": args.members, "expirations": args.members,
                        "remove_commands": args.members, "ledger_total_fen": 100_000 * args.members,
                        "still_live": 0}
            if checks != expected:
                raise SystemExit(f"benchmark run is wrong, not reporting: {checks} != {expected}")
            figures = {
                "payments_per_s": round(len(payments) / payments_s, 1),
                "payments_s": round(payments_s, 3),
                "duplicate_deliveries": len(deliveries) - len(payments),
                "reference_per_s": round(len(references) / reference_s, 1),
                "expiry_s": round(expiry_s, 3),
                "expired_per_s": round(args.members / expiry_s, 1),
                "expired_by_replica": [d["expire"] for d in done],
                "checks": checks,
            }
            figures["ratio"] = round(figures["payments_per_s"] / figures["reference_per_s"], 4)
    finally:
        await bus.stop()
    return figures


def append_result(entry: dict[str, Any]) -> None:
    results: list[Any] = []
    if RESULTS.exists() and RESULTS.read_text().strip():
        results = json.loads(RESULTS.read_text())
        if not isinstance(results, list):
            raise SystemExit(f"{RESULTS} is not a JSON list; not touching it")
    results.append(entry)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(RESULTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8, help="deliveries in flight (like partitions)")
    parser.add_argument("--replicas", type=int, default=3, help="schedulers expiring at once")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of payments delivered twice")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.json")
    args = parser.parse_args(argv)

    from tests.integration.stack import Postgres

    class BenchPostgres(Postgres):
        def databases(self) -> list[str]:
            return [self.database("membership")]

    postgres = BenchPostgres(prefix=f"qzmember_{uuid.uuid4().hex[:8]}")
    try:
        log("creating a membership database on the local PostgreSQL")
        postgres.start()
        with tempfile.TemporaryDirectory() as tmp:
            figures = asyncio.run(measure(postgres.url("membership"), args, Path(tmp)))
    finally:
        with contextlib.suppress(Exception):
            log("dropping the benchmark database")
            postgres.drop()

    ratio = figures.pop("ratio")
    verdict = "PASS" if ratio >= LIMIT else "BELOW"
    print()
    print(f"membership benchmark: {args.members} paid activations (+{figures['duplicate_deliveries']} duplicate "
          f"deliveries), {args.concurrency} in flight, PostgreSQL")
    print(f"  payments    {figures['payments_per_s']:>8.1f} /s   ({figures['payments_s']:.2f} s)")
    print(f"  reference   {figures['reference_per_s']:>8.1f} /s   (inbox claim + commit, no effect)")
    print(f"  expiry      {figures['expired_per_s']:>8.1f} /s   ({figures['expiry_s']:.2f} s, "
          f"{args.replicas} replicas, by replica {figures['expired_by_replica']})")
    print(f"  checks      {figures['checks']}")
    print(f"ratio = payments / reference = {ratio:.4f}   limit {LIMIT}   {verdict}")
    entry = {
        "benchmark": "membership",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "database": "postgres"},
        "parameters": {"members": args.members, "concurrency": args.concurrency, "replicas": args.replicas,
                       "duplicates": args.duplicates},
        **figures,
        "ratio": ratio,
        "limit": LIMIT,
        "verdict": verdict,
    }
    if args.no_record:
        print("(not appended: --no-record)")
    else:
        append_result(entry)
        print(f"appended to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
