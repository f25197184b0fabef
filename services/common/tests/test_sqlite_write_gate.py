"""Embedded mode's SQLite (issue #19): readers never wait for the writer, writers queue requests first and
FIFO, and a request that cannot get the write connection within the bounded wait is a 503, not a 500 after
30 s. The deadlines below only detect a hang; no test asserts how fast anything is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from qunzhu_common.db.engine import create_engine, create_read_engine, create_session_maker
from qunzhu_common.db.writegate import WriteGate, background_priority
from qunzhu_common.deps import ReadSessionDep, SessionDep
from qunzhu_common.errors import PROBLEM_JSON, install_problem_handlers
from qunzhu_common.metrics import ServiceMetrics
from qunzhu_common.testing import eventually
from qunzhu_common.transaction_retry import TransactionRetryMiddleware

HANG = 10  # seconds: only a deadlock takes this long


async def _engines(tmp_path: Path, gate: WriteGate):
    url = f"sqlite+aiosqlite:///{tmp_path / 'gate.sqlite3'}"
    writer = create_engine(url, gate=gate)
    reader = create_read_engine(url, writer, pool_size=2)
    async with writer.begin() as conn:
        await conn.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)"))
        await conn.execute(text("INSERT INTO item (name) VALUES ('first')"))
    return writer, reader


async def _hold_write(writer, holding: asyncio.Event, release: asyncio.Event) -> None:
    async with create_session_maker(writer)() as session, session.begin():
        await session.execute(text("INSERT INTO item (name) VALUES ('uncommitted')"))
        holding.set()
        await release.wait()


async def test_a_reader_is_served_while_a_writer_holds_the_write_lock(tmp_path: Path) -> None:
    gate = WriteGate()
    writer, reader = await _engines(tmp_path, gate)
    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(_hold_write(writer, holding, release))
    await asyncio.wait_for(holding.wait(), HANG)
    try:
        async with create_session_maker(reader)() as session:
            names = (await asyncio.wait_for(session.scalars(text("SELECT name FROM item")), HANG)).all()
        assert names == ["first"]  # the snapshot before the open write transaction
        assert gate.held  # the writer still holds it: the read did not wait for it
    finally:
        release.set()
        await held
    async with create_session_maker(reader)() as session:
        assert (await session.scalars(text("SELECT name FROM item ORDER BY id"))).all() == ["first", "uncommitted"]
        # The read pool cannot write, whatever a caller tries.
        try:
            await session.execute(text("INSERT INTO item (name) VALUES ('nope')"))
        except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError behind SQLAlchemy's wrapper
            assert "readonly" in str(exc).replace("-", "").lower()
        else:
            raise AssertionError("the read pool wrote")
    await reader.dispose()
    await writer.dispose()


async def test_requests_take_the_write_connection_before_queued_background_work_first_come_first_served(
    tmp_path: Path,
) -> None:
    gate = WriteGate()
    writer, reader = await _engines(tmp_path, gate)
    maker = create_session_maker(writer)
    order: list[str] = []

    async def write(name: str) -> None:
        async with maker() as session, session.begin():
            await session.execute(text("INSERT INTO item (name) VALUES (:n)"), {"n": name})
            order.append(name)  # the connection is checked out at the first statement

    async def background(name: str) -> None:
        with background_priority():
            await write(name)

    holding, release = asyncio.Event(), asyncio.Event()

    async def stalled_worker() -> None:
        with background_priority():
            await _hold_write(writer, holding, release)

    held = asyncio.create_task(stalled_worker())
    await asyncio.wait_for(holding.wait(), HANG)
    waiters = []
    for name in ("worker-1", "request-1", "worker-2", "request-2"):
        start = background if name.startswith("worker") else write
        waiters.append(asyncio.create_task(start(name)))
        await eventually(lambda: gate.waiting("background") + gate.waiting("request") == len(waiters),
                         within=HANG, what="the writer queued")
    release.set()
    await asyncio.wait_for(asyncio.gather(held, *waiters), HANG)
    assert order == ["request-1", "request-2", "worker-1", "worker-2"]
    await reader.dispose()
    await writer.dispose()


async def test_a_request_waits_at_most_the_bounded_wait_then_gets_503_with_retry_after(tmp_path: Path) -> None:
    metrics = ServiceMetrics("gatetest")
    gate = WriteGate(request_wait_s=0.2, on_wait=metrics.db_write_waited, on_timeout=metrics.db_write_timed_out)
    writer, reader = await _engines(tmp_path, gate)
    maker = create_session_maker(writer)
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/items")
    async def add() -> dict[str, str]:
        async with maker() as session, session.begin():
            await session.execute(text("INSERT INTO item (name) VALUES ('late')"))
        return {"status": "ok"}

    holding, release = asyncio.Event(), asyncio.Event()

    async def stalled_worker() -> None:
        with background_priority():
            await _hold_write(writer, holding, release)

    held = asyncio.create_task(stalled_worker())
    await asyncio.wait_for(holding.wait(), HANG)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            response = await asyncio.wait_for(client.post("/items"), HANG)
        finally:
            release.set()
            await held
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert int(response.headers["retry-after"]) > 0
        assert (await client.post("/items")).status_code == 200  # the worker is done: served at once

    def sample(name: str, priority: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"service": "gatetest", "priority": priority})

    assert sample("qunzhu_db_write_timeouts_total", "request") == 1
    assert sample("qunzhu_db_write_timeouts_total", "background") == 0
    assert (sample("qunzhu_db_write_wait_seconds_count", "request") or 0) >= 1
    assert not gate.held
    await reader.dispose()
    await writer.dispose()


async def test_a_waiter_cancelled_in_the_queue_does_not_keep_the_write_connection(tmp_path: Path) -> None:
    gate = WriteGate()
    writer, reader = await _engines(tmp_path, gate)
    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(_hold_write(writer, holding, release))
    await asyncio.wait_for(holding.wait(), HANG)
    maker = create_session_maker(writer)

    async def write() -> None:
        async with maker() as session, session.begin():
            await session.execute(text("INSERT INTO item (name) VALUES ('x')"))

    doomed = asyncio.create_task(write())
    await eventually(lambda: gate.waiting("request"), within=HANG, what="the writer queued")
    doomed.cancel()
    release.set()
    await held
    await asyncio.wait_for(write(), HANG)  # the connection was handed on, not lost with the cancelled waiter
    assert not gate.held
    await reader.dispose()
    await writer.dispose()


async def test_the_outbox_relay_holds_no_connection_while_the_bus_is_slow(tmp_path: Path) -> None:
    """Claim → release → publish → mark: with one write connection, a request writes while the relay waits
    for a bus that does not answer (the stall of issue #19 was a relay or worker holding it across I/O)."""
    from sqlalchemy import MetaData, insert, select

    from qunzhu_common.bus.base import OutgoingRecord
    from qunzhu_common.db.messaging import add_messaging_tables
    from qunzhu_common.outbox import OutboxRelay
    from qunzhu_common.testing import ListBus
    from qunzhu_common.timeutil import utcnow

    class StuckBus(ListBus):
        def __init__(self) -> None:
            super().__init__()
            self.entered, self.answer = asyncio.Event(), asyncio.Event()

        async def publish(self, records: list[OutgoingRecord]) -> None:
            self.entered.set()
            await self.answer.wait()
            self.published.extend(records)

    metadata = MetaData()
    outbox, _inbox = add_messaging_tables(metadata)
    gate = WriteGate(request_wait_s=2)
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.sqlite3'}"
    writer = create_engine(url, gate=gate)
    async with writer.begin() as conn:
        await conn.run_sync(metadata.create_all)
    maker = create_session_maker(writer)

    def row(n: int) -> dict[str, object]:
        return dict(event_id=f"00000000-0000-0000-0000-00000000000{n}", topic="t", key="k", event_type="x",
                    payload=b"{}", created_at=utcnow())

    async with maker() as session, session.begin():
        await session.execute(insert(outbox).values(row(1)))
    bus = StuckBus()
    relay = OutboxRelay(session_maker=maker, table=outbox, bus=bus, service="gatetest")
    publishing = asyncio.create_task(relay.publish_batch())
    await asyncio.wait_for(bus.entered.wait(), HANG)
    async with maker() as session, session.begin():  # a request writes while the bus hangs
        await asyncio.wait_for(session.execute(insert(outbox).values(row(2))), HANG)
    assert not gate.held
    bus.answer.set()
    assert await asyncio.wait_for(publishing, HANG) == 1
    assert await relay.publish_batch() == 1  # the row written meanwhile, next pass
    async with maker() as session:
        assert (await session.scalars(select(outbox.c.published_at.is_not(None)))).all() == [True, True]
    assert len(bus.published) == 2
    await writer.dispose()


async def test_a_get_reads_on_the_read_pool_and_one_that_writes_runs_again_on_the_writer(tmp_path: Path) -> None:
    gate = WriteGate()
    writer, reader = await _engines(tmp_path, gate)
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(TransactionRetryMiddleware)
    app.state.runtime = SimpleNamespace(session_maker=create_session_maker(writer),
                                        read_session_maker=create_session_maker(reader))
    runs: list[str] = []

    @app.get("/items")
    async def items(session: SessionDep) -> list[str]:
        return list((await session.scalars(text("SELECT name FROM item ORDER BY id"))).all())

    @app.get("/visit")
    async def visit(session: SessionDep) -> dict[str, str]:
        runs.append("run")
        await session.execute(text("INSERT INTO item (name) VALUES ('visited')"))  # a GET that writes
        return {"status": "ok"}

    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(_hold_write(writer, holding, release))
    await asyncio.wait_for(holding.wait(), HANG)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            listed = await asyncio.wait_for(client.get("/items"), HANG)  # served while the writer holds
            assert listed.status_code == 200 and listed.json() == ["first"]
        finally:
            release.set()
            await held
        visited = await asyncio.wait_for(client.get("/visit"), HANG)
        assert visited.status_code == 200, visited.text
        assert runs == ["run", "run"]  # refused on the read pool, then done on the writer
        assert (await client.get("/items")).json() == ["first", "uncommitted", "visited"]
    await reader.dispose()
    await writer.dispose()


async def test_the_read_session_dependency_serves_while_the_writer_holds(tmp_path: Path) -> None:
    gate = WriteGate()
    writer, reader = await _engines(tmp_path, gate)
    app = FastAPI()
    app.state.runtime = SimpleNamespace(session_maker=create_session_maker(writer),
                                        read_session_maker=create_session_maker(reader))

    @app.post("/count")  # not a GET: ReadSessionDep says "read only" whatever the method
    async def count(session: ReadSessionDep) -> int:
        return int(await session.scalar(text("SELECT count(*) FROM item")))

    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(_hold_write(writer, holding, release))
    await asyncio.wait_for(holding.wait(), HANG)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await asyncio.wait_for(client.post("/count"), HANG)).json() == 1
    finally:
        release.set()
        await held
    await reader.dispose()
    await writer.dispose()
