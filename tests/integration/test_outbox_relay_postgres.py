"""The outbox relay on a real PostgreSQL (#19): it keeps its advisory-lock connection between passes and runs
the lock, the claim, the mark and the unlock as autocommit statements on it. What must hold: a connection
killed under it costs one failed pass and nothing else (no event lost, none published twice, the lock not
left taken); a relay whose turn it is not publishes nothing and counts the backlog; a pass that drained
reports a backlog of 0; every row is published once and in order across two relays of one service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy import MetaData, func, insert, select

from qunzhu_common.db.engine import create_engine, create_session_maker
from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.outbox import OutboxRelay
from qunzhu_common.testing import ListBus
from qunzhu_common.timeutil import utcnow

pytestmark = pytest.mark.integration


@pytest.fixture
async def outbox_db(fresh_database: Callable[[str], str]):
    url = fresh_database("relay")
    metadata = MetaData()
    outbox, _inbox = add_messaging_tables(metadata)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    maker = create_session_maker(engine)
    counter = iter(range(1, 10**6))

    async def write(n: int) -> None:
        async with maker() as session, session.begin():
            rows = []
            for i in range(n):
                c = next(counter)
                rows.append(dict(event_id=f"00000000-0000-4000-8000-{c:012d}", topic="t", key=f"k{i % 3}",
                                 event_type="x", payload=f'{{"n":{c}}}'.encode(), created_at=utcnow()))
            await session.execute(insert(outbox), rows)

    async def unpublished() -> int:
        async with maker() as session:
            return int(await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))) or 0)

    yield maker, outbox, write, unpublished, url.replace("postgresql+asyncpg", "postgresql")
    await engine.dispose()


async def test_a_killed_lock_connection_costs_one_pass_and_nothing_else(outbox_db):
    maker, outbox, write, unpublished, dsn = outbox_db
    bus = ListBus()
    relay = OutboxRelay(session_maker=maker, table=outbox, bus=bus, service="relaytest", batch_size=50)
    await write(30)
    assert await relay.publish_batch() == 30
    held = await relay._lock.get_raw_connection()
    pid = held.driver_connection.get_server_pid()
    assert await relay.publish_batch() == 0  # the same connection, kept between passes
    assert (await relay._lock.get_raw_connection()).driver_connection.get_server_pid() == pid

    admin = await asyncpg.connect(dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await write(70)
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver says about a dead connection
            await relay.publish_batch()
        assert relay._lock is None  # dropped: the next pass takes a fresh one
        assert await relay.publish_batch() == 70  # 50, then 20 under the same lock
        new_pid = (await relay._lock.get_raw_connection()).driver_connection.get_server_pid()
        assert new_pid != pid
        # The advisory lock is free between passes: another session can take it.
        assert await admin.fetchval("SELECT pg_try_advisory_lock($1)", relay._lock_key)
        assert await admin.fetchval("SELECT pg_advisory_unlock($1)", relay._lock_key)
    finally:
        await admin.close()
        await relay.stop()
    assert relay._lock is None
    assert await unpublished() == 0
    assert [r.value for r in bus.published] == [f'{{"n":{c}}}'.encode() for c in range(1, 101)]  # once, in order


async def test_backlog_is_counted_only_when_the_pass_did_not_drain(outbox_db):
    maker, outbox, write, unpublished, dsn = outbox_db
    reported: list[int] = []
    bus = ListBus()
    relay = OutboxRelay(session_maker=maker, table=outbox, bus=bus, service="relaytest2", batch_size=10,
                        on_backlog=reported.append)
    await write(7)
    other = await asyncpg.connect(dsn)  # another replica's relay in the middle of its pass
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", relay._lock_key)
        await relay._pass()
        assert bus.published == [] and reported == [7]  # not our turn: nothing published, the backlog counted
        await other.fetchval("SELECT pg_advisory_unlock($1)", relay._lock_key)
    finally:
        await other.close()
    await relay._pass()
    assert len(bus.published) == 7 and reported == [7, 0]
    await write(25)  # more than a batch: the pass goes on under the same lock until a claim comes back short
    assert await relay._pass() > 0  # drained (10, 10, 5): no immediate second pass
    assert len(bus.published) == 32 and reported == [7, 0, 0]
    await relay.stop()
    assert await unpublished() == 0


async def test_two_relays_of_one_service_publish_every_row_once_in_order(outbox_db):
    maker, outbox, write, unpublished, _dsn = outbox_db
    bus = ListBus()
    relays = [OutboxRelay(session_maker=maker, table=outbox, bus=bus, service="relaytest3", batch_size=7)
              for _ in range(2)]

    async def keep_publishing(relay: OutboxRelay) -> None:
        for _ in range(200):
            await relay.publish_batch()
            await asyncio.sleep(0)

    await asyncio.gather(*(write(5) for _ in range(20)), *(keep_publishing(r) for r in relays))
    for relay in relays:
        await relay.drain()
        await relay.stop()
    assert await unpublished() == 0
    assert sorted(r.value for r in bus.published) == sorted(f'{{"n":{c}}}'.encode() for c in range(1, 101))
