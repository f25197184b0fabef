"""AwareDateTime: no naive timestamp gets in, and what comes out of SQLite is aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.exc import StatementError

from qunzhu_common.db.types import AwareDateTime

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _table() -> tuple[MetaData, Table]:
    metadata = MetaData()
    table = Table(
        "appointment",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("starts_at", AwareDateTime(), nullable=True),
    )
    return metadata, table


async def test_value_read_back_is_aware_utc_and_the_same_instant(sqlite_db):
    metadata, table = _table()
    session_maker = await sqlite_db(metadata)
    written = datetime(2026, 11, 26, 20, 30, 15, 123456, tzinfo=SHANGHAI)  # 12:30:15 UTC

    async with session_maker() as session, session.begin():
        await session.execute(insert(table).values(id=1, starts_at=written))
    async with session_maker() as session:
        read = await session.scalar(select(table.c.starts_at).where(table.c.id == 1))

    assert read == written
    assert read.tzinfo is UTC
    assert read == datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC)


async def test_order_and_comparison_follow_the_instant_not_the_wall_clock(sqlite_db):
    metadata, table = _table()
    session_maker = await sqlite_db(metadata)
    # 09:00 in Shanghai is earlier than 08:00 in London on the same day.
    shanghai_nine = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    london_eight = datetime(2026, 11, 26, 8, 0, tzinfo=ZoneInfo("Europe/London"))

    async with session_maker() as session, session.begin():
        await session.execute(
            insert(table), [{"id": 1, "starts_at": london_eight}, {"id": 2, "starts_at": shanghai_nine}]
        )
    async with session_maker() as session:
        ordered = (await session.execute(select(table.c.id).order_by(table.c.starts_at))).scalars().all()
        later = (
            (await session.execute(select(table.c.id).where(table.c.starts_at > shanghai_nine)))
            .scalars()
            .all()
        )

    assert ordered == [2, 1]
    assert later == [1]


async def test_naive_value_is_refused_and_nothing_is_written(sqlite_db):
    metadata, table = _table()
    session_maker = await sqlite_db(metadata)

    with pytest.raises(StatementError, match="naive datetime") as caught:
        async with session_maker() as session, session.begin():
            await session.execute(insert(table).values(id=1, starts_at=datetime(2026, 11, 26, 20, 30)))
    assert isinstance(caught.value.orig, ValueError)

    async with session_maker() as session:
        assert (await session.execute(select(table))).all() == []


async def test_null_stays_null(sqlite_db):
    metadata, table = _table()
    session_maker = await sqlite_db(metadata)
    async with session_maker() as session, session.begin():
        await session.execute(insert(table).values(id=1, starts_at=None))
    async with session_maker() as session:
        assert await session.scalar(select(table.c.starts_at)) is None
