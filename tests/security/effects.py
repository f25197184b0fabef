"""Side effects, counted: rows in every table of every service's database and the end offset of every
topic. Two snapshots subtract into the effect of what happened in between."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.stack import SERVICES
from tests.security.harness import SecurityStack

PROBLEM_JSON = "application/problem+json"


async def row_counts(stack: SecurityStack) -> Counter[str]:
    counts: Counter[str] = Counter()
    for service in SERVICES:
        conn = await asyncpg.connect(stack.postgres.url(service, driver="postgresql"))
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
            for table in tables:
                counts[f"{service}.{table}"] = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
        finally:
            await conn.close()
    return counts


async def end_offsets(bootstrap: str) -> Counter[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if not t.startswith("__")]
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh (as in probes.py)
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    offsets: Counter[str] = Counter()
    for tp, end in ends.items():
        offsets[f"topic {tp.topic}"] += end
    return offsets


async def snapshot(stack: SecurityStack) -> Counter[str]:
    rows, offsets = await asyncio.gather(row_counts(stack), end_offsets(stack.kafka.bootstrap))
    return rows + offsets + Counter({k: 0 for k in (*rows, *offsets)})  # keep zero entries


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    keys = set(after) | set(before)
    return {k: after[k] - before[k] for k in sorted(keys) if after[k] != before[k]}


async def settled(stack: SecurityStack, *, quiet_polls: int = 4, interval: float = 0.75,
                  timeout: float = 60, until=None) -> Counter[str]:  # noqa: ANN001, ASYNC109 - a polling deadline
    """The snapshot once nothing moved for `quiet_polls` polls in a row (and `until(snapshot)` holds)."""
    deadline = time.monotonic() + timeout
    last, same = await snapshot(stack), 0
    while True:
        await asyncio.sleep(interval)
        current = await snapshot(stack)
        same = same + 1 if current == last and (until is None or until(current)) else 0
        last = current
        if same >= quiet_polls:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"the stack did not settle within {timeout}s")


def assert_problem(response, status: int) -> None:  # noqa: ANN001
    """An RFC 9457 problem with that status."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers.get("content-type", "").startswith(PROBLEM_JSON), response.headers.get("content-type")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"], body
