"""The group committer's writers (issue #19): with an engine (PostgreSQL in production) each writer keeps one
connection between its batches instead of a pool checkout, ping and checkin per batch; a batch that fails
gives it back and the next batch starts on a fresh one; several writers commit batches side by side. Here on a
plain SQLite engine (no write gate), which is enough to see which connection each batch used."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.webhooks.batcher import GroupCommitter
from qunzhu_common.db.engine import create_session_maker


async def test_a_writer_keeps_its_connection_until_a_batch_fails(tmp_path: Path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}", pool_size=4, max_overflow=0)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE item (value TEXT PRIMARY KEY)"))
    used: list[int] = []

    async def flush(session, items):
        used.append(id((await session.connection()).sync_connection.connection.dbapi_connection))
        for item in items:
            await session.execute(text("INSERT INTO item VALUES (:v)"), {"v": item})
        return ["ok"] * len(items)

    committer = GroupCommitter(create_session_maker(engine), flush, engine=engine)
    committer.start()
    try:
        assert await committer.submit("a") == "ok"
        assert await committer.submit("b") == "ok"
        assert used[0] == used[1]  # the same connection, kept between the batches
        failed = await asyncio.gather(committer.submit("a"), return_exceptions=True)  # a duplicate key
        assert isinstance(failed[0], Exception)
        assert await committer.submit("c") == "ok"  # the writer goes on, on a fresh connection
        async with engine.connect() as conn:
            assert sorted((await conn.execute(text("SELECT value FROM item"))).scalars()) == ["a", "b", "c"]
    finally:
        await committer.stop()
        await engine.dispose()


async def test_several_writers_commit_every_item_once(tmp_path: Path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}", pool_size=4, max_overflow=0,
                                 connect_args={"timeout": 30})
    async with engine.begin() as conn:
        await conn.execute(text("PRAGMA journal_mode=WAL"))
        await conn.execute(text("CREATE TABLE item (value TEXT PRIMARY KEY)"))

    async def flush(session, items):
        for item in items:
            await session.execute(text("INSERT INTO item VALUES (:v)"), {"v": item})
        return list(items)

    committer = GroupCommitter(create_session_maker(engine), flush, writers=3, engine=engine)
    committer.start()
    try:
        values = [f"v{i}" for i in range(60)]
        assert await asyncio.gather(*(committer.submit(v) for v in values)) == values
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM item"))).scalar_one() == 60
    finally:
        await committer.stop()
        await engine.dispose()


async def test_a_broken_flush_answers_its_callers_and_the_writer_goes_on(tmp_path: Path):
    """A flush that breaks its own contract (here: too few results) fails its batch's callers with the error
    instead of killing the writer, which would leave every later webhook waiting for ever."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'b.sqlite3'}")
    broken = True

    async def flush(session, items):
        return [] if broken else ["ok"] * len(items)

    committer = GroupCommitter(create_session_maker(engine), flush)
    committer.start()
    try:
        [failed] = await asyncio.gather(asyncio.wait_for(committer.submit("a"), timeout=30), return_exceptions=True)
        assert isinstance(failed, ValueError)  # zip(strict=True): the result count did not match
        broken = False
        assert await asyncio.wait_for(committer.submit("b"), timeout=30) == "ok"
    finally:
        await committer.stop()
        await engine.dispose()


async def test_a_writer_lingers_for_callers_still_on_their_way(tmp_path: Path):
    """Callers a few loop turns apart (requests still being read and verified) share one batch; without the
    linger the first is written alone while the rest queue for the next batch (1, 15, 1, 15 … at 16 callers)."""
    sizes: list[int] = []

    async def flush(session, items):
        sizes.append(len(items))
        return ["ok"] * len(items)

    async def caller(committer: GroupCommitter, turns: int) -> str:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await committer.submit(turns)

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}")
    for linger_turns, expected in ((6, [16]), (0, None)):
        sizes.clear()
        committer = GroupCommitter(create_session_maker(engine), flush, linger_turns=linger_turns)
        committer.start()
        try:
            assert await asyncio.gather(*(caller(committer, n % 4) for n in range(16))) == ["ok"] * 16
        finally:
            await committer.stop()
        if expected is not None:
            assert sizes == expected
        else:
            assert len(sizes) > 1 and sizes[0] < 16  # the first caller went alone or nearly
    await engine.dispose()
