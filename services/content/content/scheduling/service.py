"""Creating and steering schedules: validated fully before anything is written (never half-scheduled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.context import ContentContext
from content.errors import InvalidField, InvalidState, ScheduleNotFound
from content.models import Schedule, ScheduleException, ScheduleOccurrence
from content.scheduling import rules
from qunzhu_common.events.contracts.content import OccurrenceSkipped


async def create_schedule(
    session: AsyncSession,
    *,
    ctx: ContentContext,
    community_id: str,
    kind: str,
    starts_at: datetime,
    timezone: str,
    created_by: str,
    now: datetime,
    title: str = "",
    rrule: str | None = None,
    until_at: datetime | None = None,
    offset_s: int = 0,
    misfire_grace_s: int | None = None,
    payload: dict[str, Any] | None = None,
    owner_ref: str | None = None,
) -> Schedule:
    """A schedule whose first due occurrence is now or later; 422 naming the field otherwise."""
    try:
        rules.zone(timezone)
    except ValueError as exc:
        raise InvalidField("timezone", str(exc)) from None
    if rrule is not None:
        try:
            rules.compile_rule(rrule, starts_at, timezone)
        except ValueError as exc:
            raise InvalidField("rrule", str(exc)) from None
        rrule = rules.normalise(rrule)
    if until_at is not None and until_at < starts_at:
        raise InvalidField("until_at", "the end date is before starts_at")
    schedule = Schedule(
        community_id=community_id,
        kind=kind,
        title=title,
        rrule=rrule,
        timezone=timezone,
        starts_at=starts_at.astimezone(UTC),
        until_at=until_at.astimezone(UTC) if until_at else None,
        offset_s=offset_s,
        misfire_grace_s=ctx.settings.misfire_grace_s if misfire_grace_s is None else misfire_grace_s,
        payload=payload or {},
        owner_ref=owner_ref,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    # A one-off may be at most the grace period in the past (it fires at once); a recurring schedule
    # starts with its first occurrence due from now on, never with a backlog.
    grace = timedelta(seconds=schedule.misfire_grace_s if rrule is None else 0)
    first = rules.first_at_or_after(schedule, now - timedelta(seconds=offset_s) - grace)
    if first is None:
        field = "rrule" if rrule is not None else "starts_at"
        raise InvalidField(field, "the schedule has no occurrence from now on")
    _set_next(schedule, first)
    session.add(schedule)
    await session.flush()
    ctx.after_commit_wake_scheduler(session)
    return schedule


def _set_next(schedule: Schedule, occurrence: datetime | None) -> None:
    schedule.next_occurs_at = occurrence
    schedule.next_due_at = occurrence + timedelta(seconds=schedule.offset_s) if occurrence else None
    if occurrence is None and schedule.status in ("active", "paused"):
        schedule.status = "completed"


async def get_schedule(session: AsyncSession, *, schedule_id: str, community_id: str | None = None) -> Schedule:
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None or (community_id is not None and schedule.community_id != community_id):
        raise ScheduleNotFound(f"schedule {schedule_id} does not exist")
    return schedule


async def skip_pending(
    session: AsyncSession,
    *,
    ctx: ContentContext,
    schedule: Schedule,
    reason: str,
    now: datetime,
    occurs_at: datetime | None = None,
) -> int:
    """Mark the schedule's not-yet-fired occurrences skipped (pause, cancel, a new exception)."""
    query = select(ScheduleOccurrence).where(
        ScheduleOccurrence.schedule_id == schedule.id, ScheduleOccurrence.status == "pending"
    )
    if occurs_at is not None:
        query = query.where(ScheduleOccurrence.occurs_at == occurs_at)
    pending = list((await session.execute(query.with_for_update())).scalars())
    for occurrence in pending:
        await record_skip(session, ctx=ctx, occurrence=occurrence, reason=reason, detail=f"schedule {reason}", now=now)
    return len(pending)


async def record_skip(
    session: AsyncSession,
    *,
    ctx: ContentContext,
    occurrence: ScheduleOccurrence,
    reason: str,
    detail: str,
    now: datetime,
) -> None:
    occurrence.status = "failed" if reason == "failed" else "skipped"
    occurrence.skip_reason = reason
    occurrence.detail = detail[:500]
    await ctx.outbox.emit(
        session,
        type="occurrence.skipped",
        community_id=occurrence.community_id,
        data=OccurrenceSkipped(
            community_id=occurrence.community_id,
            schedule_id=occurrence.schedule_id,
            occurrence_id=occurrence.id,
            kind=occurrence.kind,
            occurs_at=occurrence.occurs_at,
            due_at=occurrence.due_at,
            reason=reason,
            detail=detail[:500],
            skipped_at=now,
        ),
    )


async def pause(session: AsyncSession, *, ctx: ContentContext, schedule: Schedule, now: datetime) -> Schedule:
    if schedule.status == "paused":
        return schedule
    if schedule.status != "active":
        raise InvalidState(f"a {schedule.status} schedule cannot be paused")
    schedule.status, schedule.updated_at = "paused", now
    await skip_pending(session, ctx=ctx, schedule=schedule, reason="paused", now=now)
    return schedule


async def resume(session: AsyncSession, *, ctx: ContentContext, schedule: Schedule, now: datetime) -> Schedule:
    """Back to active from the next occurrence due from now: the paused period is not made up."""
    if schedule.status == "active":
        return schedule
    if schedule.status != "paused":
        raise InvalidState(f"a {schedule.status} schedule cannot be resumed")
    schedule.status, schedule.updated_at = "active", now
    _set_next(schedule, rules.first_at_or_after(schedule, now - timedelta(seconds=schedule.offset_s)))
    ctx.after_commit_wake_scheduler(session)
    return schedule


async def cancel(session: AsyncSession, *, ctx: ContentContext, schedule: Schedule, now: datetime) -> Schedule:
    if schedule.status in ("cancelled", "completed"):
        return schedule
    schedule.status, schedule.updated_at = "cancelled", now
    schedule.next_occurs_at = schedule.next_due_at = None
    await skip_pending(session, ctx=ctx, schedule=schedule, reason="cancelled", now=now)
    return schedule


async def set_end(
    session: AsyncSession, *, ctx: ContentContext, schedule: Schedule, until_at: datetime | None, now: datetime
) -> Schedule:
    if schedule.status in ("cancelled",):
        raise InvalidState("a cancelled schedule has no end date to change")
    if until_at is not None and until_at < schedule.starts_at:
        raise InvalidField("until_at", "the end date is before starts_at")
    schedule.until_at, schedule.updated_at = until_at, now
    if schedule.status == "completed" and until_at is None:
        schedule.status = "active"
    if schedule.status in ("active", "paused", "completed"):
        moment = now - timedelta(seconds=schedule.offset_s)
        if schedule.next_occurs_at is not None and schedule.next_occurs_at > moment:
            moment = schedule.next_occurs_at
        if schedule.status == "completed":
            schedule.status = "active"
        _set_next(schedule, rules.first_at_or_after(schedule, moment))
    ctx.after_commit_wake_scheduler(session)
    return schedule


async def add_exception(
    session: AsyncSession,
    *,
    ctx: ContentContext,
    schedule: Schedule,
    occurs_at: datetime,
    actor: str,
    now: datetime,
) -> ScheduleException:
    occurs_at = occurs_at.astimezone(UTC)
    if not rules.is_occurrence(schedule, occurs_at):
        raise InvalidField("occurs_at", f"{occurs_at.isoformat()} is not an occurrence of this schedule")
    existing = await session.get(ScheduleException, (schedule.id, occurs_at))
    if existing is not None:
        return existing
    exception = ScheduleException(schedule_id=schedule.id, occurs_at=occurs_at, created_by=actor, created_at=now)
    session.add(exception)
    await skip_pending(session, ctx=ctx, schedule=schedule, reason="exception", now=now, occurs_at=occurs_at)
    await session.flush()
    return exception


async def remove_exception(session: AsyncSession, *, schedule: Schedule, occurs_at: datetime) -> None:
    existing = await session.get(ScheduleException, (schedule.id, occurs_at.astimezone(UTC)))
    if existing is not None:
        await session.delete(existing)


async def exceptions_of(session: AsyncSession, *, schedule_id: str) -> list[datetime]:
    rows = await session.execute(
        select(ScheduleException.occurs_at)
        .where(ScheduleException.schedule_id == schedule_id)
        .order_by(ScheduleException.occurs_at)
    )
    return list(rows.scalars())


async def occurrences_of(
    session: AsyncSession, *, schedule_id: str, status: str | None = None, limit: int = 100
) -> list[ScheduleOccurrence]:
    query = select(ScheduleOccurrence).where(ScheduleOccurrence.schedule_id == schedule_id)
    if status is not None:
        query = query.where(ScheduleOccurrence.status == status)
    rows = await session.execute(query.order_by(ScheduleOccurrence.occurs_at.desc()).limit(limit))
    return list(rows.scalars())


async def schedules_of(session: AsyncSession, *, owner_ref: str) -> list[Schedule]:
    rows = await session.execute(select(Schedule).where(Schedule.owner_ref == owner_ref).order_by(Schedule.offset_s))
    return list(rows.scalars())
