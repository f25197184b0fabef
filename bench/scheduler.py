"""Scheduler benchmark: a burst of due occurrences and a 500-group broadcast, 3 replicas on PostgreSQL.

    .venv/bin/python bench/scheduler.py [--occurrences 10000] [--replicas 3] [--groups 500] [--spread-s 0]

A fresh database on the local PostgreSQL cluster (deploy/local/postgres.sh, loopback only) is migrated
with content's alembic history; then, untimed, `--occurrences` one-off broadcast schedules are written,
all due in the same minute (`--spread-s 0`: all at the same second, the worst case). `--replicas` OS
processes each run content's real Scheduler and Dispatcher (python bench/scheduler.py worker …) on that
one database, as content replicas do; no bus is involved (the outbox is the scheduler's output).

Figures:
  lateness   fired_at - due_at of every occurrence (p50 / p99 / max), and the time to drain the burst;
  fan-out    one scheduled broadcast to `--groups` groups: due → last group's command staged, and
             due → first; the platform rate limit is lifted for this measure (it paces by design:
             at wecom's default 10/s, 500 groups take 50 s) — reported alongside;
  duplicates occurrences fired twice, broadcasts per occurrence beyond one, `schedule.fired` events
             per occurrence beyond one, commands per (broadcast, group) beyond one. Must be 0.

ratio = lateness p99 / misfire grace (300 s), limit 1.0: below it no occurrence of the burst misfires.
The script exits 0 whatever the figures (a benchmark, not a test) and appends them to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.integration.stack (the database tooling)

RESULTS = Path(__file__).resolve().parent / "results.json"
GRACE_S = 300
LIMIT = 1.0
OWNER = "wecom:bench-owner"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --------------------------------------------------------------------------------------------------
# a replica: content's own Scheduler and Dispatcher on the shared database


async def run_worker(url: str, name: str, batch: int) -> None:
    from prometheus_client import CollectorRegistry

    from content.broadcasts.dispatcher import Dispatcher
    from content.clock import SystemClock
    from content.context import ContentContext
    from content.metrics import ContentMetrics
    from content.models import outbox_table
    from content.scheduling.actions import ACTIONS
    from content.scheduling.scheduler import Scheduler
    from content.settings import ContentSettings
    from qunzhu_common.db.engine import create_engine, create_session_maker
    from qunzhu_common.events.registry import default_registry
    from qunzhu_common.outbox import OutboxWriter

    settings = ContentSettings(
        database_url=url,
        scheduler_batch=batch,
        platform_rate_per_s={"wecom": 1_000_000.0},
        dispatch_batch=1000,
    )
    ctx = ContentContext(
        settings=settings, clock=SystemClock(), metrics=ContentMetrics(CollectorRegistry()), replica=name
    )
    ctx.outbox = OutboxWriter(table=outbox_table, registry=default_registry(), source="content")
    engine = create_engine(url)
    session_maker = create_session_maker(engine)
    scheduler = Scheduler(session_maker=session_maker, ctx=ctx, actions=ACTIONS)
    dispatcher = Dispatcher(session_maker=session_maker, ctx=ctx)
    ctx.wake_dispatcher = dispatcher.wake
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    dispatcher.start()
    print("ready", flush=True)
    await stop.wait()
    await scheduler.stop()
    await dispatcher.stop()
    await engine.dispose()


# --------------------------------------------------------------------------------------------------
# set-up (untimed)


def _community_rows(community_id: str, groups: list[str], now: datetime) -> dict[str, list[dict[str, Any]]]:
    return {
        "community_copy": [
            dict(
                id=community_id,
                name="bench",
                positioning="bench",
                timezone="Asia/Shanghai",
                created_at=now,
                synced_at=now,
            )
        ],
        "community_member": [
            dict(
                community_id=community_id,
                member_id=OWNER,
                display_name="",
                role="owner",
                status="active",
                tier="",
                changed_at=now,
            )
        ],
        "community_group": [
            dict(
                group_id=g,
                community_id=community_id,
                platform="wecom",
                role="A",
                title="",
                active=True,
                registered_by=OWNER,
                registered_at=now,
            )
            for g in groups
        ],
    }


def _schedule_row(community_id: str, due: datetime, now: datetime, text: str) -> dict[str, Any]:
    return dict(
        id=str(uuid.uuid4()),
        community_id=community_id,
        kind="broadcast",
        title="",
        rrule=None,
        timezone="Asia/Shanghai",
        starts_at=due,
        until_at=None,
        offset_s=0,
        misfire_grace_s=GRACE_S,
        status="active",
        payload={
            "text": text,
            "audience": {"kind": "community", "role": None, "group_ids": []},
            "action": "send_message",
            "mention_all": False,
        },
        next_occurs_at=due,
        next_due_at=due,
        owner_ref=None,
        created_by=OWNER,
        created_at=now,
        updated_at=now,
    )


async def insert(url: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    from content.models import metadata
    from qunzhu_common.db.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for table, values in rows.items():
                for start in range(0, len(values), 2000):
                    await conn.execute(metadata.tables[table].insert(), values[start : start + 2000])
    finally:
        await engine.dispose()


async def fetch(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def wait_for(url: str, sql: str, args: tuple[Any, ...], until: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        n = (await fetch(url, sql, *args))[0][0]
        if n >= until:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {n} of {until} after {timeout_s}s")
        await asyncio.sleep(0.25)


# --------------------------------------------------------------------------------------------------
# measures


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    burst_id, wide_id = f"burst-{uuid.uuid4().hex[:6]}", f"wide-{uuid.uuid4().hex[:6]}"
    wide_groups = [f"wecom:bench-{i:04d}" for i in range(args.groups)]
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("community_copy", "community_member", "community_group")}
    for community_id, groups in ((burst_id, [f"wecom:{burst_id}"]), (wide_id, wide_groups)):
        for table, values in _community_rows(community_id, groups, now).items():
            rows[table] += values
    await insert(url, rows)

    # All occurrences due in one minute; the replicas are up and idle before it starts.
    minute = (now + timedelta(seconds=args.lead_s + 60)).replace(second=0, microsecond=0)
    dues = [minute + timedelta(seconds=(args.spread_s * i / args.occurrences)) for i in range(args.occurrences)]
    log(f"writing {args.occurrences} schedules due from {minute.time()} over {args.spread_s:g}s")
    await insert(url, {"schedule": [_schedule_row(burst_id, due, now, f"#{i}") for i, due in enumerate(dues)]})
    wide_due = minute + timedelta(seconds=args.spread_s + 60)
    await insert(url, {"schedule": [_schedule_row(wide_id, wide_due, now, "500 群同步")]})

    log(f"waiting for the burst at {minute.time()} (UTC)")
    await wait_for(
        url,
        "SELECT count(*) FROM schedule_occurrence WHERE community_id = $1 AND status <> 'pending'",
        (burst_id,),
        args.occurrences,
        timeout_s=(minute - datetime.now(UTC)).total_seconds() + 600,
    )
    occ = await fetch(
        url,
        "SELECT status, lateness_s, fired_by, fired_at, due_at FROM schedule_occurrence WHERE community_id = $1",
        burst_id,
    )
    lateness = [r["lateness_s"] for r in occ if r["status"] == "fired"]
    drain_s = (max(r["fired_at"] for r in occ if r["fired_at"]) - minute).total_seconds()
    by_replica: dict[str, int] = {}
    for r in occ:
        if r["fired_by"]:
            by_replica[r["fired_by"]] = by_replica.get(r["fired_by"], 0) + 1

    log(f"waiting for the {args.groups}-group broadcast due at {wide_due.time()}")
    await wait_for(
        url,
        "SELECT count(*) FROM broadcast_delivery WHERE community_id = $1 AND status = 'sent'",
        (wide_id,),
        args.groups,
        timeout_s=(wide_due - datetime.now(UTC)).total_seconds() + 300,
    )
    sent = await fetch(
        url,
        "SELECT min(sent_at) AS first, max(sent_at) AS last FROM broadcast_delivery WHERE community_id = $1",
        wide_id,
    )
    wide_occ = await fetch(url, "SELECT lateness_s FROM schedule_occurrence WHERE community_id = $1", wide_id)
    order = await fetch(url, "SELECT group_id FROM broadcast_delivery WHERE community_id = $1 ORDER BY seq", wide_id)

    duplicates = {
        "occurrences": (
            await fetch(url, "SELECT count(*) - count(DISTINCT (schedule_id, occurs_at)) FROM schedule_occurrence")
        )[0][0],
        "broadcasts": (
            await fetch(
                url, "SELECT count(*) - count(DISTINCT occurrence_id) FROM broadcast WHERE occurrence_id IS NOT NULL"
            )
        )[0][0],
        "schedule_fired_events": (
            await fetch(
                url,
                "SELECT count(*) - count(DISTINCT convert_from(payload, 'UTF8')::json->'data'->>'occurrence_id') "
                "FROM outbox WHERE event_type = 'schedule.fired'",
            )
        )[0][0],
        "commands": (
            await fetch(
                url,
                "SELECT count(*) - count(DISTINCT (convert_from(payload, 'UTF8')::json->'data'->>'group_id') || "
                "split_part(convert_from(payload, 'UTF8')::json->'data'->>'action_id', ':', 2)) "
                "FROM outbox WHERE event_type = 'chat.action.requested'",
            )
        )[0][0],
    }
    return {
        "fired": len(lateness),
        "skipped": sum(1 for r in occ if r["status"] != "fired"),
        "lateness_p50_s": round(percentile(lateness, 50), 4),
        "lateness_p99_s": round(percentile(lateness, 99), 4),
        "lateness_max_s": round(max(lateness), 4) if lateness else None,
        "lateness_mean_s": round(statistics.fmean(lateness), 4) if lateness else None,
        "burst_drain_s": round(drain_s, 3),
        "fired_by_replica": sorted(by_replica.values(), reverse=True),
        "fanout_groups": args.groups,
        "fanout_first_s": round((sent[0]["first"] - wide_due).total_seconds(), 4),
        "fanout_last_s": round((sent[0]["last"] - wide_due).total_seconds(), 4),
        "fanout_firing_lateness_s": round(wide_occ[0]["lateness_s"], 4),
        "fanout_stable_order": [r["group_id"] for r in order] == wide_groups,
        "fanout_at_default_wecom_rate_s": args.groups / 10.0,
        "duplicates": duplicates,
        "duplicates_total": sum(duplicates.values()),
    }


def start_replicas(url: str, n: int, batch: int) -> list[subprocess.Popen[str]]:
    procs = []
    for i in range(n):
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "worker", "--url", url, "--name", f"replica-{i}", "--batch", str(batch)],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env={**os.environ, "CONTENT_LOG_LEVEL": "WARNING"},
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"a replica failed to start (exit {proc.poll()})")
    return procs


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
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker", help="(internal) one scheduler replica")
    worker.add_argument("--url", required=True)
    worker.add_argument("--name", required=True)
    worker.add_argument("--batch", type=int, default=500)
    parser.add_argument("--occurrences", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--spread-s", type=float, default=0.0, help="spread the due times over this many seconds")
    parser.add_argument("--batch", type=int, default=500, help="occurrences claimed per transaction per replica")
    parser.add_argument("--lead-s", type=float, default=10.0, help="at least this long between set-up and the burst")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.json")
    args = parser.parse_args(argv)
    if args.command == "worker":
        asyncio.run(run_worker(args.url, args.name, args.batch))
        return 0

    from content.app import MIGRATIONS_DIR
    from qunzhu_common.db.migrate import upgrade_head
    from tests.integration.stack import Postgres

    class BenchPostgres(Postgres):
        def databases(self) -> list[str]:
            return [self.database("content")]

    postgres = BenchPostgres(prefix=f"qzsched_{uuid.uuid4().hex[:8]}")
    procs: list[subprocess.Popen[str]] = []
    try:
        log("creating a content database on the local PostgreSQL")
        postgres.start()
        url = postgres.url("content")
        upgrade_head(MIGRATIONS_DIR, url)
        log(f"starting {args.replicas} scheduler replicas")
        procs = start_replicas(url, args.replicas, args.batch)
        figures = asyncio.run(measure(url, args))
        pg_version = asyncio.run(fetch(url, "SHOW server_version"))[0][0]
    finally:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        with contextlib.suppress(Exception):
            log("dropping the benchmark database")
            postgres.drop()

    ratio = figures["lateness_p99_s"] / GRACE_S
    verdict = "PASS" if ratio < LIMIT and figures["duplicates_total"] == 0 and figures["skipped"] == 0 else "FAIL"
    print()
    print(
        f"scheduler benchmark: {args.occurrences} occurrences due within {args.spread_s:g}s of one minute, "
        f"{args.replicas} replicas on PostgreSQL {pg_version}"
    )
    print(
        f"  firing lateness   p50 {figures['lateness_p50_s'] * 1000:.0f} ms"
        f"   p99 {figures['lateness_p99_s'] * 1000:.0f} ms"
        f"   max {figures['lateness_max_s'] * 1000:.0f} ms   (burst drained {figures['burst_drain_s']:.2f}s after due)"
    )
    print(f"  fired per replica {figures['fired_by_replica']}   skipped {figures['skipped']}")
    print(
        f"  fan-out to {args.groups} groups: first command {figures['fanout_first_s'] * 1000:.0f} ms, last "
        f"{figures['fanout_last_s'] * 1000:.0f} ms after due (rate limit lifted; at wecom's default 10/s: "
        f"{figures['fanout_at_default_wecom_rate_s']:.0f} s by design); stable order {figures['fanout_stable_order']}"
    )
    print(f"  duplicates {figures['duplicates_total']}  {figures['duplicates']}   (must be 0)")
    print(f"ratio = lateness p99 / misfire grace ({GRACE_S}s) = {ratio:.5f}   limit {LIMIT}   {verdict}")
    entry = {
        "benchmark": "scheduler",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "database": "postgres",
            "postgresql": pg_version,
        },
        "parameters": {
            "occurrences": args.occurrences,
            "replicas": args.replicas,
            "groups": args.groups,
            "spread_s": args.spread_s,
            "batch": args.batch,
        },
        **figures,
        "ratio": round(ratio, 6),
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
