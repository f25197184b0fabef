"""Schedule routes: scheduled broadcasts, pause/resume, end date, exceptions, occurrences."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.community.service import get_community, resolve_audience
from content.context import ContentContext
from content.deps import ContextDep, StaffOf
from content.errors import InvalidField
from content.models import Schedule
from content.scheduling import rules, service
from content.scheduling.schemas import EndDate, ExceptionCreate, OccurrencePublic, ScheduleCreate, SchedulePublic
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/schedules", tags=["schedules"])


async def schedule_public(session: AsyncSession, ctx: ContentContext, schedule: Schedule) -> SchedulePublic:
    """What will happen, not the scheduler's bookmark: only occurrences that will fire are shown.

    `upcoming` leaves out exception dates and anything past the end date; a paused (or finished) schedule
    has no upcoming times and no `next_occurs_at`/`next_due_at` until it is resumed.
    """
    exceptions = await service.exceptions_of(session, schedule_id=schedule.id)
    upcoming = []
    if schedule.status == "active" and schedule.next_occurs_at is not None:
        upcoming = rules.upcoming(schedule, after=schedule.next_occurs_at, count=5, exceptions=exceptions)
    next_occurs_at = upcoming[0] if upcoming else None
    shown = set(SchedulePublic.model_fields) - {"upcoming", "exceptions", "next_occurs_at", "next_due_at"}
    return SchedulePublic(
        **schedule.model_dump(include=shown),
        next_occurs_at=next_occurs_at,
        next_due_at=next_occurs_at + timedelta(seconds=schedule.offset_s) if next_occurs_at else None,
        upcoming=upcoming,
        exceptions=exceptions,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SchedulePublic)
async def create_schedule(
    community_id: str, body: ScheduleCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Schedule a broadcast once or by RRULE (owner/admin); 422 names a bad rrule, timezone or audience."""
    community = await get_community(session, community_id=community_id)
    groups = await resolve_audience(session, community_id=community_id, audience=body.audience)
    if not groups:
        raise InvalidField("audience", "the audience has no groups")
    schedule = await service.create_schedule(
        session,
        ctx=ctx,
        community_id=community_id,
        kind="broadcast",
        title=body.title,
        rrule=body.rrule,
        starts_at=body.starts_at,
        timezone=body.timezone or community.timezone,
        until_at=body.until_at,
        misfire_grace_s=body.misfire_grace_s,
        created_by=caller.actor.recorded_as,
        now=ctx.clock.now(),
        payload={
            "text": body.text,
            "audience": body.audience.model_dump(),
            "action": body.action,
            "mention_all": body.mention_all,
        },
    )
    return await schedule_public(session, ctx, schedule)


@router.get("", response_model=list[SchedulePublic])
async def list_schedules(
    community_id: str,
    session: SessionDep,
    ctx: ContextDep,
    caller: StaffOf,
    kind: Annotated[str | None, Query(max_length=30)] = None,
) -> list[SchedulePublic]:
    """The community's schedules (owner/admin; all kinds: broadcasts, previews, rituals, digests, post publications)."""
    query = select(Schedule).where(Schedule.community_id == community_id)
    if kind is not None:
        query = query.where(Schedule.kind == kind)
    rows = (await session.execute(query.order_by(Schedule.created_at, Schedule.id))).scalars()
    return [await schedule_public(session, ctx, s) for s in rows]


@router.get("/{schedule_id}", response_model=SchedulePublic)
async def get_schedule(
    community_id: str, schedule_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """One schedule with the occurrences that will fire (`upcoming`: no exception dates, nothing past the end
    date, none while paused) and its exception dates (owner/admin)."""
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    return await schedule_public(session, ctx, schedule)


@router.post("/{schedule_id}/pause", response_model=SchedulePublic)
async def pause(
    community_id: str, schedule_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Stop firing; occurrences due meanwhile are not made up on resume.

    While paused the schedule reads `status: "paused"` with no `upcoming` times and no `next_occurs_at`
    (nothing will fire); its pending occurrences are recorded as skipped with reason `paused`.
    """
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    await service.pause(session, ctx=ctx, schedule=schedule, now=ctx.clock.now())
    return await schedule_public(session, ctx, schedule)


@router.post("/{schedule_id}/resume", response_model=SchedulePublic)
async def resume(
    community_id: str, schedule_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Fire again from the next occurrence due from now (listed again in `upcoming`)."""
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    await service.resume(session, ctx=ctx, schedule=schedule, now=ctx.clock.now())
    return await schedule_public(session, ctx, schedule)


@router.delete("/{schedule_id}", response_model=SchedulePublic)
async def cancel(
    community_id: str, schedule_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Cancel for good (the history of fired and skipped occurrences stays)."""
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    await service.cancel(session, ctx=ctx, schedule=schedule, now=ctx.clock.now())
    return await schedule_public(session, ctx, schedule)


@router.put("/{schedule_id}/end", response_model=SchedulePublic)
async def set_end(
    community_id: str, schedule_id: str, body: EndDate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Set or clear the end date."""
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    await service.set_end(session, ctx=ctx, schedule=schedule, until_at=body.until_at, now=ctx.clock.now())
    return await schedule_public(session, ctx, schedule)


@router.post("/{schedule_id}/exceptions", response_model=SchedulePublic)
async def add_exception(
    community_id: str, schedule_id: str, body: ExceptionCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Do not fire this one occurrence (e.g. no session on a holiday Sunday): listed in `exceptions`, no longer
    in `upcoming`, and recorded as skipped with reason `exception` when its time comes."""
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    await service.add_exception(
        session, ctx=ctx, schedule=schedule, occurs_at=body.occurs_at, actor=caller.actor.recorded_as,
        now=ctx.clock.now(),
    )
    return await schedule_public(session, ctx, schedule)


@router.delete("/{schedule_id}/exceptions", response_model=SchedulePublic)
async def remove_exception(
    community_id: str, schedule_id: str, body: ExceptionCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """Fire that occurrence after all (if it is not past yet); it is listed in `upcoming` again."""
    schedule = await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    await service.remove_exception(session, schedule=schedule, occurs_at=body.occurs_at)
    return await schedule_public(session, ctx, schedule)


@router.get("/{schedule_id}/occurrences", response_model=list[OccurrencePublic])
async def occurrences(
    community_id: str,
    schedule_id: str,
    session: SessionDep,
    caller: StaffOf,
    status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OccurrencePublic]:
    """Fired, skipped (with the reason) and failed occurrences, newest first (owner/admin).

    This is the history; what will fire is the schedule's `upcoming`. An occurrence never reads `pending`
    once it will not fire: pausing, cancelling or an exception date marks it skipped with that reason.
    """
    await service.get_schedule(session, schedule_id=schedule_id, community_id=community_id)
    rows = await service.occurrences_of(session, schedule_id=schedule_id, status=status_, limit=limit)
    return [OccurrencePublic(**o.model_dump(include=set(OccurrencePublic.model_fields))) for o in rows]
