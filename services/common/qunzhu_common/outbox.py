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
from sqlalchemy import BigInteger, Table, any_, bindparam, event, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from qunzhu_common.background import BackgroundLoop
from qunzhu_common.bus.base import Bus, OutgoingRecord
from qunzhu_common.context import service_var
from qunzhu_common.db.bulk import bulk_insert
from qunzhu_common.db.engine import mark_lock_only, unmark_lock_only
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


@functools.cache
def _MARK_PUBLISHED_PG(table: Table) -> Any:  # noqa: N802 - a cached statement, used like a constant
    return (
        update(table)
        .where(table.c.seq == any_(bindparam("seqs", type_=postgresql.ARRAY(BigInteger()))))
        .values(published_at=bindparam("now"))
    )


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

    def wake(self) -> None:
        self._loop.wake()

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were published (0 when none or not our turn).

        Claim → release → publish → mark: no connection is held while the bus is waited for (a slow
        broker must not hold the only SQLite connection of embedded mode, nor row locks on PostgreSQL).
        One pass at a time per relay (the loop and `drain`); across PostgreSQL replicas a session-level
        advisory lock, held on a connection that holds no transaction meanwhile, keeps a key's order.
        On PostgreSQL a backlog is published under one lock while batches come full (up to
        `LOCKED_BATCHES` of them), and the claim and the mark run on the lock's own connection (each
        committed before the publish or right after the mark): no pool checkout (and its pre-ping, three
        round trips) per statement.
        """
        async with self._one_pass:
            engine = self._session_maker.kw.get("bind")
            if engine is None or engine.dialect.name != "postgresql":
                return await self._claim_publish_mark()
            async with engine.connect() as lock:
                mark_lock_only(lock)
                try:
                    got = await lock.scalar(select(func.pg_try_advisory_lock(self._lock_key)))
                    await lock.commit()  # the lock is the session's; no transaction stays open
                    if not got:
                        return 0
                    try:
                        published = batch = await self._claim_publish_mark(lock)
                        for _ in range(LOCKED_BATCHES - 1):
                            if batch < self._batch_size:
                                break
                            batch = await self._claim_publish_mark(lock)
                            published += batch
                        return published
                    finally:
                        await self._unlock(lock)
                finally:
                    unmark_lock_only(lock)

    async def _unlock(self, lock: AsyncConnection) -> None:
        """Release the advisory lock. Runs in a `finally`: its own failure must not replace what is on
        its way out (a cancellation turned into PendingRollbackError never stops the relay's loop), so
        a connection that cannot unlock is invalidated — closing it releases the lock — and only a
        cancellation of the unlock itself propagates."""
        try:
            await lock.rollback()  # a claim or mark interrupted half-way
            await lock.execute(select(func.pg_advisory_unlock(self._lock_key)))
            await lock.commit()
        except BaseException as exc:
            try:
                await lock.invalidate()  # never hand a connection still holding the lock back to the pool
            except Exception:  # the connection is gone either way
                log.debug("invalidating the relay's lock connection failed", exc_info=True)
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

    async def _claim_publish_mark(self, lock: AsyncConnection | None = None) -> int:
        """One batch. With `lock` (PostgreSQL: the advisory lock's connection, holding no transaction)
        the claim and the mark run on it; otherwise each takes a session of its own."""
        table = self._table
        if lock is not None:
            rows = (await lock.execute(self._claim_statement())).all()
            await lock.commit()  # nothing held across the publish
        else:
            async with self._read_session_maker() as session:
                rows = (await session.execute(self._claim_statement())).all()
        if not rows:
            return 0
        records = [OutgoingRecord(topic=r.topic, key=r.key, value=bytes(r.payload)) for r in rows]
        await self._bus.publish(records)
        seqs = [r.seq for r in rows]
        if lock is not None:
            # One array parameter: an IN list of 500 binds cost more Python to render than the publish.
            await lock.execute(_MARK_PUBLISHED_PG(table), {"seqs": seqs, "now": utcnow()})
            await lock.commit()
        else:
            async with self._session_maker() as session, session.begin():
                await session.execute(update(table).where(table.c.seq.in_(seqs)).values(published_at=utcnow()))
        if self._on_published:
            self._on_published(records, [r.event_type for r in rows])
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
        if published >= self._batch_size:
            return 0  # more is waiting
        if self._on_backlog is not None:
            self._on_backlog(await self.backlog())
        return self._poll_interval_s

    async def run(self) -> None:
        await self._loop.run()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
