"""Factories for the common package's tests: a real LocalBus on a SQLite file, handlers that record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from qunzhu_common.bus.base import ConsumerObserver, OutgoingRecord, Record
from qunzhu_common.bus.delivery import RetryPolicy
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.db.engine import create_engine, create_session_maker
from qunzhu_common.testing import eventually

# Tiny backoff so retries and dead-lettering take milliseconds, not seconds.
FAST_POLICY = RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.005)


def record(topic: str, key: str, value: str | bytes, **headers: str) -> OutgoingRecord:
    raw = value.encode() if isinstance(value, str) else value
    return OutgoingRecord(
        topic=topic, key=key, value=raw, headers=tuple((k, v.encode()) for k, v in headers.items())
    )


class Recorder:
    """A handler that remembers every record it completed, in completion order."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def __call__(self, rec: Record) -> None:
        # Yield so several partitions really run concurrently.
        await asyncio.sleep(0)
        self.records.append(rec)

    @property
    def values(self) -> list[str]:
        return [r.value.decode() for r in self.records]


class CommitWatcher(ConsumerObserver):
    """Sees when partitions have committed: the bus reports lag only after committing what it handled.

    `mark()` forgets earlier reports; `reported()` holds the partitions that reported since then.
    A partition's first report after its last handler returned comes after that record's commit.
    """

    def __init__(self) -> None:
        self._since_mark: set[tuple[str, int]] = set()

    def lag(self, topic: str, partition: int, lag: int) -> None:
        self._since_mark.add((topic, partition))

    def mark(self) -> None:
        self._since_mark.clear()

    def reported(self, topic: str) -> set[int]:
        return {p for t, p in self._since_mark if t == topic}


BusFactory = Callable[..., Awaitable[LocalBus]]


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[None]]:
    return eventually


@pytest.fixture(name="record")
def record_fixture() -> Callable[..., OutgoingRecord]:
    return record


@pytest.fixture(name="commit_watcher")
def commit_watcher_fixture() -> Callable[[], CommitWatcher]:
    return CommitWatcher


@pytest.fixture(name="recorder")
def recorder_fixture() -> Callable[[], Recorder]:
    return Recorder


@pytest.fixture
def bus_path(tmp_path: Path) -> Path:
    return tmp_path / "bus.sqlite3"


@pytest.fixture
async def open_bus(bus_path: Path) -> AsyncIterator[BusFactory]:
    """Open (and finally close) LocalBus instances on the same file: a reopen is a restart."""
    opened: list[LocalBus] = []

    async def factory(*, partitions: int = 3, policy: RetryPolicy = FAST_POLICY) -> LocalBus:
        bus = LocalBus(bus_path, partitions=partitions, policy=policy, poll_interval_s=0.05)
        await bus.start()
        opened.append(bus)
        return bus

    yield factory
    for bus in reversed(opened):
        await bus.stop()


@pytest.fixture
async def sqlite_db(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[async_sessionmaker[AsyncSession]]]]:
    """Create a metadata's tables in a fresh SQLite file; returns a session maker on it."""
    engines: list[AsyncEngine] = []

    async def factory(metadata: MetaData) -> async_sessionmaker[AsyncSession]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / f'db{len(engines)}.sqlite3'}")
        engines.append(engine)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        return create_session_maker(engine)

    yield factory
    for engine in engines:
        await engine.dispose()
