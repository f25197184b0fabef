"""The I/O guard (qunzhu_common.testing_io_guard) sees an outbound call or a publish started while the same
task holds a connection, and nothing else: a call after the session closed, another task's call, a
lock-only connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from qunzhu_common import testing_io_guard as guard
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.db.engine import create_engine, create_session_maker, mark_lock_only, unmark_lock_only

pytestmark = pytest.mark.skipif(guard._MODE == "off", reason="QUNZHU_IO_GUARD=off")


def _taken() -> list[guard.Violation]:
    """The violations this test provoked on purpose, removed so that the test itself is not failed."""
    taken = list(guard._state.current)
    guard._state.current.clear()
    return taken


@pytest.fixture
async def maker(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'guard.sqlite3'}")
    yield create_session_maker(engine)
    await engine.dispose()


@pytest.fixture
def client():
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(204)), base_url="http://bridge")


async def test_a_call_while_holding_a_connection_is_a_violation_with_both_stacks(maker, client) -> None:
    async with maker() as session, session.begin():
        await session.execute(text("SELECT 1"))
        await client.post("/send")
    (violation,) = _taken()
    assert violation.call == "HTTP POST http://bridge/send"
    assert "test_a_call_while_holding" in violation.call_stack
    assert "test_a_call_while_holding" in violation.checkout_stack


async def test_a_publish_while_holding_a_connection_is_a_violation(maker, tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    try:
        async with maker() as session:
            await session.execute(text("SELECT 1"))
            await bus.publish([])
        (violation,) = _taken()
        assert violation.call == "LocalBus.publish(0 records)"
    finally:
        await bus.stop()


async def test_claim_release_call_record_and_other_tasks_calls_are_fine(maker, client) -> None:
    async with maker() as session, session.begin():
        await session.execute(text("SELECT 1"))
    await client.post("/send")  # released first
    async with maker() as session:
        await session.execute(text("SELECT 1"))
        await asyncio.create_task(client.post("/send"))  # another task holds nothing
    assert _taken() == []


async def test_a_connection_marked_lock_only_may_be_held(maker, client) -> None:
    engine = maker.kw["bind"]
    async with engine.connect() as lock:
        await lock.execute(text("SELECT 1"))
        await lock.commit()
        mark_lock_only(lock)
        try:
            await client.post("/send")
        finally:
            unmark_lock_only(lock)
    assert _taken() == []
