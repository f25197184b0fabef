"""Engagement's scoring path on PostgreSQL without Kafka: a profiling aid for #19 part 6, not a benchmark.

    .venv/bin/python bench/scoring_direct.py [--events 10000] [--batch 170] [--partitions 3]
                                             [--py-spy FILE] [--statements] [--keep]

The chat events of `bench/engagement.py` (6 communities × 500 members, after the same seeding and a
300-event warm-up, then ANALYZE) go straight to the service's `EventConsumer.handle_batch` — `--partitions`
runs of `--batch` records processed concurrently, as the Kafka bus hands a consumer its partitions — and
then the events it emitted on its own topic (level.reached…) go back to it, as the bus would deliver them.
No broker, no relay: what is left is the consumer, the handlers, the scorer and the database, so changes to
them can be compared quickly (a few seconds a run) and side by side (run it from two checkouts).

Prints events/s, the process's CPU µs per event, the outbox by event type; `--statements` adds the
statements by total time (count, seconds: what a batch asks the database); `--py-spy FILE` profiles the
scoring phase (bench/pyspy.py). The database is dropped at the end unless `--keep`. Nothing is recorded in
`bench/results.json`: the figures of record come from `bench/engagement.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is on sys.path first and bench/engagement.py would shadow the `engagement` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bench.engagement import chat_events, membership_events, seed  # noqa: E402
from bench.pyspy import profiled  # noqa: E402
from engagement.app import MIGRATIONS_DIR, create_app  # noqa: E402
from engagement.settings import EngagementSettings  # noqa: E402
from qunzhu_common.bus.base import Record  # noqa: E402
from qunzhu_common.db.migrate import upgrade_head_async  # noqa: E402
from qunzhu_common.process import tune_gc  # noqa: E402
from tests.integration.stack import Postgres  # noqa: E402


class OnePostgres(Postgres):
    def databases(self) -> list[str]:
        return [self.database("engagement")]


def records(envelopes: list[Any], partition: int, topic: str = "chat.events.v1") -> list[Record]:
    return [Record(topic=topic, partition=partition, offset=i, key=e.community_id, value=e.to_bytes())
            for i, e in enumerate(envelopes)]


def time_statements(engine: Any) -> dict[str, list[float]]:
    """Count and time every statement (SQLAlchemy cursor events), by its first 110 characters."""
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        conn.info.setdefault("qz_started", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        entry = stats[" ".join(statement.split())[:110]]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info["qz_started"].pop()

    return stats


async def run(args: argparse.Namespace) -> None:
    pg = OnePostgres(prefix=f"qzdirect_{uuid.uuid4().hex[:8]}")
    pg.start()
    try:
        url = pg.url("engagement")
        await upgrade_head_async(MIGRATIONS_DIR, url)
        communities = [str(uuid.uuid4()) for _ in range(6)]
        start = datetime.now(UTC) - timedelta(days=2)
        members = membership_events(communities, 500, start - timedelta(days=30))
        warmup = chat_events(communities, 500, 300, start - timedelta(days=1))
        events = chat_events(communities, 500, args.events, start)
        parts: dict[int, list[Any]] = defaultdict(list)
        for envelope in events:  # one community's events share a partition, as the bus keys them
            parts[communities.index(envelope.community_id) % args.partitions].append(envelope)
        app = create_app(EngagementSettings(database_url=url, bus="local", data_dir=Path(tempfile.mkdtemp()),
                                            jobs_interval_s=0, run_consumers=False, run_relay=False))
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            async with app.router.lifespan_context(app):
                consumer = app.state.runtime.consumer
                stats = time_statements(app.state.runtime.engine)
                await seed(app, members)
                await consumer.handle_batch(records(warmup, 0))
                await conn.execute("ANALYZE")  # a database in service has statistics
                seen = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM outbox")
                stats.clear()

                async def partition(number: int) -> None:
                    batch = records(parts[number], number)
                    for first in range(0, len(batch), args.batch):
                        await consumer.handle_batch(batch[first:first + args.batch])

                with profiled(args.py_spy) as report:
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    await asyncio.gather(*(partition(n) for n in parts))
                    t1 = time.perf_counter()
                rows = await conn.fetch("SELECT key, payload FROM outbox WHERE seq > $1 AND topic = "
                                        "'engagement.events.v1' ORDER BY seq", seen)
                own = [Record(topic="engagement.events.v1", partition=0, offset=i, key=r["key"],
                              value=bytes(r["payload"])) for i, r in enumerate(rows)]
                t2 = time.perf_counter()
                for first in range(0, len(own), 500):
                    await consumer.handle_batch(own[first:first + 500])
                t3, cpu1 = time.perf_counter(), time.process_time()
                by_type = await conn.fetch("SELECT event_type, count(*) FROM outbox WHERE seq > $1 GROUP BY 1 "
                                           "ORDER BY 2 DESC", seen)
        finally:
            await conn.close()
        n = len(events)
        print(f"chat events  {n} in {t1 - t0:.2f} s = {n / (t1 - t0):.0f}/s ({args.partitions} partitions, "
              f"batches of {args.batch})")
        print(f"own events   {len(own)} in {t3 - t2:.2f} s")
        print(f"together     {n / (t1 - t0 + t3 - t2):.0f} chat events/s, {1e6 * (cpu1 - cpu0) / n:.0f} µs CPU per "
              "chat event")
        print("outbox       " + ", ".join(f"{r[0]} {r[1]}" for r in by_type))
        if report.summary:
            print(report.summary)
        if args.statements:
            for text, (count, seconds) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:30]:
                print(f"{seconds:7.2f} s {count:6d}  {text}")
    finally:
        if args.keep:
            print(f"kept {pg.url('engagement')}")
        else:
            pg.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=170, help="records per handle_batch (the bus: ≈500 ÷ partitions)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE")
    parser.add_argument("--statements", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database (EXPLAIN its statements)")
    args = parser.parse_args()
    tune_gc()  # as `qunzhu serve` runs the service
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
