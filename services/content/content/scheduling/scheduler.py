"""The scheduler: materialise due occurrences, then fire each exactly once across replicas.

Two steps, each in its own short transactions:

1. materialise — schedules whose `next_due_at` has come are claimed with `SELECT … FOR UPDATE SKIP
   LOCKED` (a replica never waits for another one's schedules); their due occurrences become rows,
   unique on (schedule, occurs_at), and `next_occurs_at` advances in the same transaction.
2. fire — pending occurrence rows are claimed the same way; the occurrence's effect (a broadcast, a
   post published, a session started…), its `fired` status and its `schedule.fired` event commit
   together. A replica killed mid-way commits none of it, and the row is claimed again later: no
   occurrence is lost and none fires twice, with any number of replicas and across restarts.

Misfire policy: an occurrence fires if it is at most the schedule's grace period late (default
5 min); otherwise it is skipped with reason `misfire` (recorded, and announced as
`occurrence.skipped`). SQLite has no row locks: there the IMMEDIATE transactions serialise writers,
and embedded mode runs one scheduler task.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from content.context import ContentContext
from content.models import Schedule, ScheduleException, ScheduleOccurrence
from content.models.base import new_id
from content.scheduling import rules
from content.scheduling.service import record_skip
from qunzhu_common.background import BackgroundLoop
from qunzhu_common.events.contracts.content import ScheduleFired

log = logging.getLogger(__name__)

Action = Callable[..., Awaitable[None]]


@dataclass
class PassResult:
    materialised: int = 0
    fired: int = 0
    skipped: int = 0
    failed: int = 0
    lateness_s: list[float] = field(default_factory=list)


def insert_ignoring_duplicates(session: AsyncSession, table: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for both databases (executemany-friendly)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class _ActionFailed(Exception):
    """An action raised in an optimistic batch: redo the batch with one savepoint per occurrence."""


class Scheduler:
    def __init__(
        self,
        *,
        session_maker: async_sessionmaker[AsyncSession],
        ctx: ContentContext,
        actions: dict[str, Action],
    ) -> None:
        self._session_maker = session_maker
        self._ctx = ctx
        self._actions = actions
        self._loop = BackgroundLoop("content scheduler", self._pass, logger=log, backoff_s=0.2, max_backoff_s=10.0)

    def wake(self) -> None:
        self._loop.wake()

    # -- one pass ------------------------------------------------------------------------------
    async def run_once(self) -> PassResult:
        result = PassResult()
        while await self._materialise(result) >= self._ctx.settings.scheduler_batch:
            pass
        while await self._fire(result) >= self._ctx.settings.scheduler_batch:
            pass
        return result

    async def _materialise(self, result: PassResult) -> int:
        ctx = self._ctx
        now = ctx.clock.now()
        skipped: list[str] = []
        async with self._session_maker() as session, session.begin():
            schedules = list(
                (
                    await session.execute(
                        select(Schedule)
                        .where(Schedule.status == "active", Schedule.next_due_at <= now)
                        .order_by(Schedule.next_due_at)
                        .limit(ctx.settings.scheduler_batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            recurring = [s.id for s in schedules if s.rrule is not None]
            excluded: set[tuple[str, datetime]] = set()
            if recurring:
                excluded = {
                    (r.schedule_id, r.occurs_at)
                    for r in await session.execute(
                        select(ScheduleException.schedule_id, ScheduleException.occurs_at).where(
                            ScheduleException.schedule_id.in_(recurring)
                        )
                    )
                }
            rows: list[dict] = []
            for schedule in schedules:
                offset = timedelta(seconds=schedule.offset_s)
                occurrence = schedule.next_occurs_at
                made = 0
                while occurrence is not None and occurrence + offset <= now and made < ctx.settings.materialise_cap:
                    rows.append(
                        dict(
                            id=new_id(),
                            schedule_id=schedule.id,
                            community_id=schedule.community_id,
                            kind=schedule.kind,
                            occurs_at=occurrence,
                            due_at=occurrence + offset,
                            status="pending",
                            detail="",
                            created_at=now,
                        )
                    )
                    occurrence = rules.next_after(schedule, occurrence)
                    made += 1
                schedule.next_occurs_at = occurrence
                schedule.next_due_at = occurrence + offset if occurrence is not None else None
                if occurrence is None:
                    schedule.status = "completed"
            if rows:
                # One statement for the batch; the unique (schedule, occurs_at) makes a re-run harmless.
                await session.execute(insert_ignoring_duplicates(session, ScheduleOccurrence.__table__), rows)
                result.materialised += len(rows)
            for row in rows:
                if (row["schedule_id"], row["occurs_at"]) not in excluded:
                    continue
                item = await session.scalar(
                    select(ScheduleOccurrence).where(
                        ScheduleOccurrence.schedule_id == row["schedule_id"],
                        ScheduleOccurrence.occurs_at == row["occurs_at"],
                        ScheduleOccurrence.status == "pending",
                    )
                )
                if item is not None:
                    await record_skip(
                        session,
                        ctx=ctx,
                        occurrence=item,
                        reason="exception",
                        detail="an exception date of the schedule",
                        now=now,
                    )
                    skipped.append(item.kind)
        for kind in skipped:
            ctx.metrics.occurrences.labels(kind, "skipped", "exception").inc()
        result.skipped += len(skipped)
        return len(schedules)

    async def _fire(self, result: PassResult) -> int:
        """Fire a batch. Optimistically without a savepoint per occurrence (so the effects' rows are
        written in batches); if an action fails, the whole batch rolls back and is redone with each
        occurrence in its own savepoint, so the broken one is recorded as failed and the rest fire."""
        try:
            return await self._fire_batch(result, isolate=False)
        except _ActionFailed:
            return await self._fire_batch(result, isolate=True)

    async def _fire_batch(self, result: PassResult, *, isolate: bool) -> int:
        ctx = self._ctx
        now = ctx.clock.now()
        fired: list[tuple[str, float]] = []
        skipped: list[tuple[str, str, str]] = []
        async with self._session_maker() as session, session.begin():
            occurrences = list(
                (
                    await session.execute(
                        select(ScheduleOccurrence)
                        .where(ScheduleOccurrence.status == "pending", ScheduleOccurrence.due_at <= now)
                        .order_by(ScheduleOccurrence.due_at, ScheduleOccurrence.id)
                        .limit(ctx.settings.scheduler_batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if not occurrences:
                return 0
            ids = {o.schedule_id for o in occurrences}
            schedules = {
                s.id: s for s in (await session.execute(select(Schedule).where(Schedule.id.in_(ids)))).scalars()
            }
            events = ctx.batch()
            # Effects of the whole batch are written at commit in a few multi-row statements, not
            # flushed occurrence by occurrence before every outbox insert.
            with session.sync_session.no_autoflush:
                for occurrence in occurrences:
                    schedule = schedules[occurrence.schedule_id]
                    lateness = max(0.0, (now - occurrence.due_at).total_seconds())
                    if schedule.status in ("paused", "cancelled"):
                        await record_skip(
                            session,
                            ctx=ctx,
                            occurrence=occurrence,
                            reason=schedule.status,
                            detail=f"schedule {schedule.status}",
                            now=now,
                        )
                        skipped.append((occurrence.kind, "skipped", schedule.status))
                        continue
                    if lateness > schedule.misfire_grace_s:
                        await record_skip(
                            session,
                            ctx=ctx,
                            occurrence=occurrence,
                            reason="misfire",
                            detail=f"{lateness:.0f}s late, more than the {schedule.misfire_grace_s}s grace period",
                            now=now,
                        )
                        skipped.append((occurrence.kind, "skipped", "misfire"))
                        continue
                    action = self._actions.get(occurrence.kind)
                    try:
                        if action is None:
                            raise LookupError(f"no action for schedule kind {occurrence.kind!r}")
                        if isolate:
                            async with session.begin_nested():
                                await action(session, ctx, schedule=schedule, occurrence=occurrence, now=now)
                        else:
                            await action(session, ctx, schedule=schedule, occurrence=occurrence, now=now)
                    except Exception as exc:  # one broken occurrence must not hold up the others
                        if not isolate:
                            raise _ActionFailed from exc
                        log.warning("occurrence %s (%s) failed: %r", occurrence.id, occurrence.kind, exc)
                        await record_skip(
                            session,
                            ctx=ctx,
                            occurrence=occurrence,
                            reason="failed",
                            detail=f"{type(exc).__name__}: {exc}",
                            now=now,
                        )
                        skipped.append((occurrence.kind, "failed", "failed"))
                        continue
                    # Lateness as of the effect, not of the batch's start: the last of a big burst is later.
                    fired_at = ctx.clock.now()
                    lateness = max(0.0, (fired_at - occurrence.due_at).total_seconds())
                    occurrence.status, occurrence.fired_at = "fired", fired_at
                    occurrence.lateness_s, occurrence.fired_by = lateness, ctx.replica
                    events.emit(
                        type="schedule.fired",
                        community_id=occurrence.community_id,
                        data=ScheduleFired(
                            community_id=occurrence.community_id,
                            schedule_id=schedule.id,
                            occurrence_id=occurrence.id,
                            kind=occurrence.kind,
                            occurs_at=occurrence.occurs_at,
                            due_at=occurrence.due_at,
                            fired_at=fired_at,
                            lateness_s=lateness,
                        ),
                    )
                    fired.append((occurrence.kind, lateness))
            await events.write(session)
        # Observed only once committed: a rolled-back pass fired nothing.
        for kind, lateness in fired:
            ctx.metrics.scheduler_lateness.labels(kind).observe(lateness)
            ctx.metrics.occurrences.labels(kind, "fired", "").inc()
            result.lateness_s.append(lateness)
        for kind, outcome, reason in skipped:
            ctx.metrics.occurrences.labels(kind, outcome, reason).inc()
        result.fired += len(fired)
        result.skipped += sum(1 for s in skipped if s[1] == "skipped")
        result.failed += sum(1 for s in skipped if s[1] == "failed")
        return len(occurrences)

    # -- the loop ----------------------------------------------------------------------------------
    async def next_wake_in(self) -> float:
        """Seconds until something is due (capped at the tick), so firing is not a tick late."""
        tick = self._ctx.settings.scheduler_tick_s
        async with self._session_maker() as session:
            nexts = [
                await session.scalar(select(func.min(Schedule.next_due_at)).where(Schedule.status == "active")),
                await session.scalar(
                    select(func.min(ScheduleOccurrence.due_at)).where(ScheduleOccurrence.status == "pending")
                ),
            ]
        due = [n for n in nexts if n is not None]
        if not due:
            return tick
        # A floor, so rows another replica holds locked do not make this one spin.
        return min(tick, max(0.02, (min(due) - self._ctx.clock.now()).total_seconds()))

    async def _pass(self) -> float:
        await self.run_once()
        return await self.next_wake_in()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
