"""Idempotent consumption: each event's effects and its inbox row commit in one transaction.

The framework, not each handler, decodes and validates the record, skips duplicates and runs the
handler inside the transaction; handlers only describe the effect.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qunzhu_common.bus.base import Record
from qunzhu_common.context import correlation_id_var, event_id_var, service_var
from qunzhu_common.db.upsert import insert_if_absent, insert_many_if_absent
from qunzhu_common.events.envelope import EnvelopeHead
from qunzhu_common.events.registry import EventRegistry
from qunzhu_common.timeutil import utcnow
from qunzhu_common.unit_of_work import mark_deferrable, run_deferred

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class Event(Generic[P]):
    """A consumed event: the envelope and its payload parsed into the registered model.

    `envelope` is the registry's typed envelope of the event type (its `data` is `data`) when the record
    was decoded on the fast path, else the generic `Envelope`; both offer the envelope's fields.
    """

    envelope: EnvelopeHead
    data: P

    @property
    def id(self) -> str:
        return str(self.envelope.id)

    @property
    def community_id(self) -> str:
        return self.envelope.community_id


Handler = Callable[[AsyncSession, Event[Any]], Awaitable[None]]


class ConsumerMetrics:
    """What the consumer reports; the service's metrics implement it."""

    def consumed(self, topic: str, type_: str, outcome: str) -> None: ...

    def failed(self, topic: str, type_: str) -> None: ...

    def handled_in(self, topic: str, type_: str, seconds: float) -> None: ...

    def consumed_many(self, topic: str, type_: str, outcome: str, count: int) -> None:
        """`count` events of one topic, type and outcome at once (a consumed batch reports per kind)."""
        for _ in range(count):
            self.consumed(topic, type_, outcome)

    def handled_many(self, topic: str, type_: str, seconds: list[float]) -> None:
        for value in seconds:
            self.handled_in(topic, type_, value)


async def claim_in_inbox(
    session: AsyncSession, table: Table, *, consumer: str, envelope: EnvelopeHead, topic: str
) -> bool:
    """Record the event as processed by `consumer`; False when it already was (a duplicate)."""
    return await insert_if_absent(
        session,
        table,
        dict(
            consumer=consumer,
            event_id=str(envelope.id),
            event_type=envelope.type,
            topic=topic,
            processed_at=utcnow(),
        ),
    )


class EventConsumer:
    """The record handler a service subscribes with: registry validation + inbox + typed handlers."""

    def __init__(
        self,
        *,
        group_id: str,
        session_maker: async_sessionmaker[AsyncSession],
        inbox_table: Table,
        registry: EventRegistry,
        handlers: Mapping[str, Handler],
        metrics: ConsumerMetrics | None = None,
        batch_hold_s: float | None = None,
    ) -> None:
        self.group_id = group_id
        # Embedded mode's SQLite has one writer per database: a batch's transaction that held it longer
        # than this commits what it has done and goes on in a new one (None: one transaction per batch).
        self._batch_hold_s = batch_hold_s
        self._session_maker = session_maker
        self._inbox = inbox_table
        self._registry = registry
        self._handlers = dict(handlers)
        self._metrics = metrics or ConsumerMetrics()

    def topics(self) -> list[str]:
        """Topics carrying at least one event type this consumer handles."""
        return sorted({spec.topic for spec in self._registry.specs() if spec.type in self._handlers})

    async def __call__(self, record: Record) -> None:
        # InvalidEvent → dead-lettered at once
        envelope, payload = self._registry.decode_event(record.value, self._handlers)
        handler = self._handlers.get(envelope.type)
        if handler is None:
            self._metrics.consumed(record.topic, envelope.type, "ignored")
            return
        token = correlation_id_var.set(envelope.correlation_id)
        service_token = service_var.set(self.group_id)
        event_token = event_id_var.set(str(envelope.id))
        started = time.perf_counter()
        try:
            async with self._session_maker() as session, session.begin():
                mark_deferrable(session)
                if not await claim_in_inbox(
                    session, self._inbox, consumer=self.group_id, envelope=envelope, topic=record.topic
                ):
                    self._metrics.consumed(record.topic, envelope.type, "duplicate")
                    return
                await handler(session, Event(envelope=envelope, data=payload))
                await run_deferred(session)
        except Exception:
            self._metrics.failed(record.topic, envelope.type)
            raise
        finally:
            event_id_var.reset(event_token)
            service_var.reset(service_token)
            correlation_id_var.reset(token)
        self._metrics.handled_in(record.topic, envelope.type, time.perf_counter() - started)
        self._metrics.consumed(record.topic, envelope.type, "processed")

    async def handle_batch(self, records: list[Record]) -> None:
        """The effects of several records of one partition in ONE transaction, in order.

        All or nothing: if any record is invalid or any handler raises, the transaction rolls back
        (inbox claims included) and this raises; the bus then delivers the records one by one, with
        their own retries and dead-lettering. Saves a commit per event on the happy path.
        """
        prepared: list[tuple[Record, EnvelopeHead, str, Handler | None, BaseModel | None]] = []
        handlers = self._handlers
        decode = self._registry.decode_event
        for record in records:
            envelope, payload = decode(record.value, handlers)
            prepared.append((record, envelope, str(envelope.id), handlers.get(envelope.type), payload))
        # Per kind of outcome, not per event: a metric label lookup per event cost more than the event.
        counts: dict[tuple[str, str, str], int] = {}
        durations: dict[tuple[str, str], list[float]] = {}
        service_token = service_var.set(self.group_id)
        try:
            while prepared:
                prepared = await self._apply(prepared, counts, durations)
        finally:
            service_var.reset(service_token)
        for (topic, type_), seconds in durations.items():
            self._metrics.handled_many(topic, type_, seconds)
        for (topic, type_, outcome), count in counts.items():
            self._metrics.consumed_many(topic, type_, outcome, count)

    async def _apply(
        self, prepared: list[tuple[Record, EnvelopeHead, str, Handler | None, BaseModel | None]],
        counts: dict[tuple[str, str, str], int], durations: dict[tuple[str, str], list[float]],
    ) -> list[tuple[Record, EnvelopeHead, str, Handler | None, BaseModel | None]]:
        """Applies `prepared` in one transaction, or the part of it done within the hold budget; returns the
        rest (their inbox claims given back in the same transaction, so they are claimed again next)."""
        rest: list[tuple[Record, EnvelopeHead, str, Handler | None, BaseModel | None]] = []
        async with self._session_maker() as session, session.begin():
            mark_deferrable(session)  # handlers may queue work for the whole batch (run_deferred below)
            # One statement claims the whole batch; an id claimed earlier (or twice in this
            # batch) comes back unclaimed and its record is a duplicate.
            now = utcnow()
            claimed = await insert_many_if_absent(
                session,
                self._inbox,
                [
                    dict(consumer=self.group_id, event_id=event_id, event_type=envelope.type,
                         topic=record.topic, processed_at=now)
                    for record, envelope, event_id, handler, _ in prepared
                    if handler is not None
                ],
                returning="event_id",
            )
            began = time.perf_counter()  # the budget counts from the claim: the wait for the writer is not a hold
            for index, (record, envelope, event_id, handler, payload) in enumerate(prepared):
                if index and self._batch_hold_s is not None and time.perf_counter() - began > self._batch_hold_s:
                    rest = prepared[index:]
                    unclaim = [event_id for _, _, event_id, _, _ in rest if event_id in claimed]
                    if unclaim:
                        await session.execute(delete(self._inbox).where(
                            self._inbox.c.consumer == self.group_id, self._inbox.c.event_id.in_(unclaim)))
                    break
                if handler is None:
                    outcome = "ignored"
                elif event_id not in claimed:
                    outcome = "duplicate"
                else:
                    claimed.discard(event_id)  # a second copy in this batch is a duplicate
                    started = time.perf_counter()
                    token = correlation_id_var.set(envelope.correlation_id)
                    event_token = event_id_var.set(event_id)
                    try:
                        await handler(session, Event(envelope=envelope, data=payload))
                    finally:
                        event_id_var.reset(event_token)
                        correlation_id_var.reset(token)
                    outcome = "processed"
                    durations.setdefault((record.topic, envelope.type), []).append(
                        time.perf_counter() - started)
                kind = (record.topic, envelope.type, outcome)
                counts[kind] = counts.get(kind, 0) + 1
            await run_deferred(session)
        return rest
