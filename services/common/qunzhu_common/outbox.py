"""Transactional outbox: events are written in the same transaction as the state they describe,
then a relay publishes them to the bus and marks them published.

A crash between publish and mark republishes the batch; consumers' inboxes make that harmless.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, event, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from qunzhu_common.background import BackgroundLoop
from qunzhu_common.bus.base import Bus, OutgoingRecord
from qunzhu_common.context import service_var
from qunzhu_common.db.bulk import bulk_insert
from qunzhu_common.db.engine import mark_lock_only, unmark_lock_only
from qunzhu_common.db.transient import as_dbapi_error
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.events.registry import EventRegistry
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)

AFTER_COMMIT_HOOKS = "qunzhu_after_commit"
LOCKED_BATCHES = 10  # full batches one relay publishes per advisory lock on PostgreSQL


def run_after_commit(session: AsyncSession, hook: Callable[[], None]) -> None:
    """Call `hook` once the session's transaction has committed (never if it rolls back).

    The same hook registered twice in one transaction runs once — right for wake-ups. A transaction
    may hold a whole batch of consumed events, so per-event effects (a counter per event) must
    register a fresh callable each time.
    """
    hooks: list[Callable[[], None]] = session.sync_session.info.setdefault(AFTER_COMMIT_HOOKS, [])
    if hook not in hooks:
        hooks.append(hook)


def count_after_commit(session: AsyncSession, counter: Any, amount: float = 1) -> None:
    """Increment a metric (a counter or one of its `labels(...)` children) once the transaction commits: a
    batch rolled back and retried event by event, or a failed job, counts once or not at all."""
    run_after_commit(session, functools.partial(counter.inc, amount))  # a fresh callable: never merged


@event.listens_for(Session, "after_commit")
def _run_after_commit_hooks(session: Session) -> None:
    for hook in session.info.pop(AFTER_COMMIT_HOOKS, []):
        try:
            hook()
        except Exception:  # a wake-up hook must never turn a commit into an error
            log.exception("after-commit hook failed")


@event.listens_for(Session, "after_rollback")
def _drop_after_commit_hooks(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_HOOKS, None)


_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
_UNLOCK = "SELECT pg_advisory_unlock($1)"


class OutboxWriter:
    """Validates events against the registry and stages them in the caller's transaction."""

    def __init__(self, *, table: Table, registry: EventRegistry, source: str) -> None:
        self.table = table
        self.registry = registry
        self.source = source
        self._on_write: Callable[[], None] | None = None

    def on_write(self, hook: Callable[[], None]) -> None:
        """Hook run after a transaction with outbox rows commits (the relay's wake-up)."""
        self._on_write = hook

    async def add(self, session: AsyncSession, envelope: Envelope) -> Envelope:
        await self.add_many(session, [envelope])
        return envelope

    async def add_many(self, session: AsyncSession, envelopes: list[Envelope]) -> None:
        """Stage several events with one multi-row INSERT, in list order."""
        if not envelopes:
            return
        now = utcnow()
        rows = []
        for envelope in envelopes:
            topic, key = self.registry.route(envelope)
            rows.append(dict(event_id=str(envelope.id), topic=topic, key=key, event_type=envelope.type,
                             payload=envelope.to_bytes(), created_at=now))
        await bulk_insert(session, self.table, rows, fallback=insert(self.table))
        if self._on_write is not None:
            run_after_commit(session, self._on_write)

    async def emit(
        self,
        session: AsyncSession,
        *,
        type: str,
        data: BaseModel,
        community_id: str,
        version: int = 1,
    ) -> Envelope:
        """Build an envelope from this service and stage it; returns it (its id is the event id)."""
        envelope = new_envelope(
            type=type, data=data, source=self.source, community_id=community_id, version=version
        )
        return await self.add(session, envelope)


class OutboxRelay:
    """Publishes unpublished outbox rows in order, in batches, and marks them published."""

    def __init__(
        self,
        *,
        session_maker: async_sessionmaker[AsyncSession],
        table: Table,
        bus: Bus,
        service: str,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        on_published: Callable[[list[OutgoingRecord], list[str]], None] | None = None,
        on_backlog: Callable[[int], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        read_session_maker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._session_maker = session_maker
        # The claim only reads: on SQLite the read pool's snapshot, so only the mark takes the writer.
        self._read_session_maker = read_session_maker or session_maker
        self._table = table
        self._bus = bus
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._on_published = on_published
        self._on_backlog = on_backlog
        # One relay per service database publishes at a time, so a key's order survives replicas.
        self._service = service
        self._lock_key = zlib.crc32(f"qunzhu-outbox-{service}".encode())
        self._one_pass = asyncio.Lock()
        self._loop = BackgroundLoop("outbox relay", self._pass, logger=log, on_failure=on_failure)
        self._lock: AsyncConnection | None = None  # PostgreSQL: the advisory lock's connection, kept
        self._drained = False  # the last claim came back short of a batch
        quoted = postgresql.dialect().identifier_preparer.format_table(table)
        self._claim_sql = (f"SELECT seq, topic, key, payload, event_type FROM {quoted} "
                           "WHERE published_at IS NULL ORDER BY seq LIMIT $1")
        self._mark_sql = f"UPDATE {quoted} SET published_at = $2 WHERE seq = ANY($1::bigint[])"

    def wake(self) -> None:
        self._loop.wake()

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were published (0 when none or not our turn).

        Claim → release → publish → mark: no connection is held while the bus is waited for (a slow
        broker must not hold the only SQLite connection of embedded mode, nor row locks on PostgreSQL).
        One pass at a time per relay (the loop and `drain`); across PostgreSQL replicas a session-level
        advisory lock, held on a connection that holds no transaction meanwhile, keeps a key's order.
        On PostgreSQL a backlog is published under one lock while batches come full (up to
        `LOCKED_BATCHES` of them); the lock, the claim, the mark and the unlock are single statements in
        autocommit on the driver of the lock's connection, which the relay keeps between passes: a pass
        is four round trips, where a pool checkout (its pre-ping), SQLAlchemy's BEGIN/COMMIT around each
        statement and a count for the backlog gauge made it about twenty (#19: at 3,500 events/s the relay
        was a tenth of the gateway's CPU, most of it in socket sends).
        """
        async with self._one_pass:
            engine = self._session_maker.kw.get("bind")
            if engine is None or engine.dialect.name != "postgresql":
                return await self._claim_publish_mark()
            try:
                driver = await self._lock_driver(engine)
                if not await driver.fetchval(_TRY_LOCK, self._lock_key):
                    self._drained = False  # another replica's turn: the backlog is not known here
                    return 0
                try:
                    published = batch = await self._claim_publish_mark(driver)
                    for _ in range(LOCKED_BATCHES - 1):
                        if batch < self._batch_size:
                            break
                        batch = await self._claim_publish_mark(driver)
                        published += batch
                    return published
                finally:
                    await self._unlock(driver)
            except BaseException as exc:
                await self._drop_lock_connection()  # the next pass starts on a fresh one
                wrapped = as_dbapi_error(exc)  # a cancellation comes back as it is
                if wrapped is exc:
                    raise
                raise wrapped from exc

    async def _lock_driver(self, engine: AsyncEngine) -> Any:
        """The driver (asyncpg) connection of the relay's lock connection, checked out once and kept."""
        if self._lock is None or self._lock.closed or self._lock.invalidated:
            self._lock = await engine.connect()  # SQLAlchemy begins nothing on it: the driver is in autocommit
            mark_lock_only(self._lock)
        return (await self._lock.get_raw_connection()).driver_connection

    async def _drop_lock_connection(self) -> None:
        """Give the lock connection back, invalidated: closing it ends its session and so any lock it held."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            unmark_lock_only(lock)
            await asyncio.shield(lock.invalidate())
            await asyncio.shield(lock.close())
        except Exception:  # the connection is gone either way
            log.debug("dropping the relay's lock connection failed", exc_info=True)

    async def _unlock(self, driver: Any) -> None:
        """Release the advisory lock. Runs in a `finally`: its own failure must not replace what is on
        its way out (a cancellation turned into another error never stops the relay's loop), so a
        connection that cannot unlock is dropped — closing it releases the lock — and only a cancellation
        of the unlock itself propagates."""
        try:
            await driver.fetchval(_UNLOCK, self._lock_key)
        except BaseException as exc:
            await self._drop_lock_connection()  # never keep a connection that may still hold the lock
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("outbox relay: releasing the lock failed, connection dropped: %r", exc)

    def _claim_statement(self) -> Any:
        table = self._table
        return (
            select(table.c.seq, table.c.topic, table.c.key, table.c.payload, table.c.event_type)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.seq)
            .limit(self._batch_size)
        )

    async def _claim_publish_mark(self, driver: Any = None) -> int:
        """One batch. With `driver` (PostgreSQL: the lock connection's, in autocommit) the claim and the mark
        are one statement each on it; otherwise each takes a session of its own."""
        table = self._table
        if driver is not None:
            rows = await driver.fetch(self._claim_sql, self._batch_size)
        else:
            async with self._read_session_maker() as session:
                rows = (await session.execute(self._claim_statement())).all()
        self._drained = len(rows) < self._batch_size  # everything committed before the claim is in it
        if not rows:
            return 0
        # (seq, topic, key, payload, event_type), by position: asyncpg records and SQLAlchemy rows alike
        records = [OutgoingRecord(topic=r[1], key=r[2], value=bytes(r[3])) for r in rows]
        await self._bus.publish(records)
        seqs = [r[0] for r in rows]
        if driver is not None:
            await driver.execute(self._mark_sql, seqs, utcnow())  # one array parameter, not an IN list
        else:
            async with self._session_maker() as session, session.begin():
                await session.execute(update(table).where(table.c.seq.in_(seqs)).values(published_at=utcnow()))
        if self._on_published:
            self._on_published(records, [r[4] for r in rows])
        return len(rows)

    async def backlog(self) -> int:
        async with self._read_session_maker() as session:
            count = await session.scalar(
                select(func.count()).select_from(self._table).where(self._table.c.published_at.is_(None))
            )
        return int(count or 0)

    async def drain(self) -> None:
        """Publish until nothing is left (tests, shutdown)."""
        while await self.publish_batch():
            pass

    async def _pass(self) -> float:
        service_var.set(self._service)  # the loop's task logs as this service
        published = await self.publish_batch()
        if published >= self._batch_size and not self._drained:
            return 0  # more is waiting
        if self._on_backlog is not None:
            # A pass whose last claim came back short published everything committed before it: nothing
            # to count. Otherwise (another replica's turn, or nothing claimed by us) count it.
            self._on_backlog(0 if self._drained else await self.backlog())
        return self._poll_interval_s

    async def run(self) -> None:
        await self._loop.run()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._drop_lock_connection()  # not waiting for a `drain` in another task: it fails and stops
