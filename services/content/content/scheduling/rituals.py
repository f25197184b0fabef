"""Rituals (fixed time + fixed form, 003) and the weekly digest: both are schedules underneath."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from content.community.service import get_community, resolve_audience
from content.context import ContentContext
from content.deps import ContextDep, StaffOf
from content.errors import InvalidField, NotFound
from content.models import Ritual
from content.scheduling import service
from content.scheduling.api import schedule_public
from content.scheduling.schemas import DigestCreate, RitualCreate, RitualPublic, SchedulePublic
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}", tags=["rituals"])


async def _public(session: AsyncSession, ctx: ContentContext, ritual: Ritual) -> RitualPublic:
    schedules = await service.schedules_of(session, owner_ref=f"ritual:{ritual.id}")
    return RitualPublic(
        **ritual.model_dump(include=set(RitualPublic.model_fields) - {"schedules"}),
        schedules=[await schedule_public(session, ctx, s) for s in schedules],
    )


async def _ritual(session: AsyncSession, community_id: str, ritual_id: str) -> Ritual:
    ritual = await session.get(Ritual, ritual_id)
    if ritual is None or ritual.community_id != community_id:
        raise NotFound(f"ritual {ritual_id} does not exist")
    return ritual


@router.post("/rituals", status_code=status.HTTP_201_CREATED, response_model=RitualPublic)
async def create_ritual(
    community_id: str, body: RitualCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> RitualPublic:
    """A recurring themed event with countdown messages (default T-24h, T-1h) before each occurrence
    (owner/admin)."""
    community = await get_community(session, community_id=community_id)
    if not await resolve_audience(session, community_id=community_id, audience=body.audience):
        raise InvalidField("audience", "the audience has no groups")
    now = ctx.clock.now()
    offsets = (
        body.countdown_offsets_s if body.countdown_offsets_s is not None else ctx.settings.ritual_countdown_offsets_s
    )
    ritual = Ritual(
        community_id=community_id,
        title=body.title,
        text=body.text,
        created_by=caller.actor.recorded_as,
        created_at=now,
        countdown_offsets_s=sorted(set(offsets), reverse=True),
    )
    session.add(ritual)
    await session.flush()
    common = dict(
        ctx=ctx,
        community_id=community_id,
        rrule=body.rrule,
        starts_at=body.starts_at,
        timezone=body.timezone or community.timezone,
        until_at=body.until_at,
        misfire_grace_s=body.misfire_grace_s,
        created_by=caller.actor.recorded_as,
        now=now,
        owner_ref=f"ritual:{ritual.id}",
        title=body.title,
    )
    payload = {"ritual_id": ritual.id, "audience": body.audience.model_dump(), "action": "announce"}
    await service.create_schedule(session, kind="ritual", payload=payload, **common)
    for offset in ritual.countdown_offsets_s:
        await service.create_schedule(session, kind="ritual_countdown", offset_s=-offset, payload=payload, **common)
    return await _public(session, ctx, ritual)


@router.get("/rituals/{ritual_id}", response_model=RitualPublic)
async def get_ritual(
    community_id: str, ritual_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> RitualPublic:
    """A ritual and its schedules (the event itself and each countdown; owner/admin)."""
    return await _public(session, ctx, await _ritual(session, community_id, ritual_id))


@router.post("/rituals/{ritual_id}/{change}", response_model=RitualPublic)
async def change_ritual(
    community_id: str, ritual_id: str, change: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> RitualPublic:
    """`pause` or `resume` the ritual with all its countdowns (owner/admin)."""
    ritual = await _ritual(session, community_id, ritual_id)
    if change not in ("pause", "resume"):
        raise NotFound(f"no such change {change!r}; pause or resume")
    now = ctx.clock.now()
    for schedule in await service.schedules_of(session, owner_ref=f"ritual:{ritual.id}"):
        if change == "pause":
            await service.pause(session, ctx=ctx, schedule=schedule, now=now)
        else:
            await service.resume(session, ctx=ctx, schedule=schedule, now=now)
    ritual.status = "paused" if change == "pause" else "active"
    return await _public(session, ctx, ritual)


@router.post("/digests", status_code=status.HTTP_201_CREATED, response_model=SchedulePublic)
async def create_digest(
    community_id: str, body: DigestCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SchedulePublic:
    """A recurring digest (default every Monday 09:00) of the week's featured and most-discussed posts
    (owner/admin)."""
    community = await get_community(session, community_id=community_id)
    if not await resolve_audience(session, community_id=community_id, audience=body.audience):
        raise InvalidField("audience", "the audience has no groups")
    schedule = await service.create_schedule(
        session,
        ctx=ctx,
        community_id=community_id,
        kind="digest",
        title=body.title,
        rrule=body.rrule,
        starts_at=body.starts_at,
        timezone=body.timezone or community.timezone,
        until_at=body.until_at,
        misfire_grace_s=body.misfire_grace_s,
        created_by=caller.actor.recorded_as,
        now=ctx.clock.now(),
        payload={"audience": body.audience.model_dump(), "action": "send_message"},
    )
    return await schedule_public(session, ctx, schedule)
