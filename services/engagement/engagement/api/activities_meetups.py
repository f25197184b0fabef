"""Offline meetups (线下活动): create, register/cancel (or `接龙 <title>` in chat), codes, check-in."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from engagement.activities import chains
from engagement.activities import meetups as service
from engagement.activities.schemas import (
    AttendeePublic,
    CodeBody,
    CodePublic,
    MeetupCreate,
    MeetupPublic,
    PersonBody,
    SignupBody,
    SignupPublic,
)
from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.models import Meetup, MeetupAttendance
from qunzhu_common.actor import require_self_unless_staff
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}/meetups", tags=["activities"])


async def _public(session: SessionDep, meetup: Meetup) -> MeetupPublic:
    registration = await chains.public(session, await service.chain_of(session, meetup))
    return MeetupPublic(**meetup.model_dump(), registration=registration)


@router.post("", response_model=MeetupPublic, status_code=status.HTTP_201_CREATED)
async def create_meetup(community_id: str, caller: StaffOf, body: MeetupCreate, session: SessionDep,
                        ctx: ContextDep) -> MeetupPublic:
    """Announce a meetup; registration is its 接龙 (capacity, then the waitlist)."""
    return await _public(session, await service.create(session, ctx, community_id=community_id, data=body))


@router.get("", response_model=list[MeetupPublic])
async def list_meetups(community_id: str, caller: MemberOf, session: SessionDep) -> list[MeetupPublic]:
    """Meetups, soonest first."""
    rows = await session.execute(select(Meetup).where(Meetup.community_id == community_id)
                                 .order_by(Meetup.starts_at))
    return [await _public(session, row) for row in rows.scalars()]


@router.get("/{meetup_id}", response_model=MeetupPublic)
async def get_meetup(community_id: str, meetup_id: str, caller: MemberOf, session: SessionDep) -> MeetupPublic:
    """One meetup with its registration list and waitlist."""
    return await _public(session, await service.get(session, community_id=community_id, meetup_id=meetup_id))


@router.post("/{meetup_id}/registrations", response_model=SignupPublic, status_code=status.HTTP_201_CREATED)
async def register(community_id: str, meetup_id: str, caller: MemberOf, body: SignupBody, session: SessionDep,
                   ctx: ContextDep, response: Response) -> SignupPublic:
    """Register (confirmed or waitlisted, 201); registering again returns the same place (200)."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    meetup = await service.get(session, community_id=community_id, meetup_id=meetup_id)
    chain = await service.chain_of(session, meetup)
    outcome, position, state = await chains.signup(session, ctx, chain=chain, person_id=body.person_id,
                                                   line=body.line, at=utcnow())
    if outcome == "already":
        response.status_code = status.HTTP_200_OK
    return SignupPublic(chain_id=chain.id, person_id=body.person_id, outcome=outcome,  # type: ignore[arg-type]
                        position=position, status=state)  # type: ignore[arg-type]


@router.post("/{meetup_id}/cancellations", response_model=SignupPublic)
async def cancel(community_id: str, meetup_id: str, caller: MemberOf, body: PersonBody, session: SessionDep,
                 ctx: ContextDep) -> SignupPublic:
    """Cancel a registration; the first on the waitlist is promoted automatically."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    meetup = await service.get(session, community_id=community_id, meetup_id=meetup_id)
    chain = await service.chain_of(session, meetup)
    outcome, promoted = await chains.cancel(session, ctx, chain=chain, person_id=body.person_id, at=utcnow())
    return SignupPublic(chain_id=chain.id, person_id=body.person_id, outcome=outcome,  # type: ignore[arg-type]
                        position=None, status="cancelled", promoted=promoted)


@router.post("/{meetup_id}/codes", response_model=CodePublic)
async def issue_code(community_id: str, meetup_id: str, caller: StaffOf, body: PersonBody, session: SessionDep
                     ) -> MeetupAttendance:
    """A confirmed registrant's one-time check-in code (the same code when asked again)."""
    meetup = await service.get(session, community_id=community_id, meetup_id=meetup_id)
    return await service.issue_code(session, meetup=meetup, person_id=body.person_id)


@router.post("/{meetup_id}/checkins", response_model=CodePublic)
async def check_in(community_id: str, meetup_id: str, caller: MemberOf, body: CodeBody, session: SessionDep,
                   ctx: ContextDep) -> MeetupAttendance:
    """On-site check-in with a one-time code: attendance recorded (and scored); a used code is a 409."""
    meetup = await service.get(session, community_id=community_id, meetup_id=meetup_id)
    return await service.check_in(session, ctx, meetup=meetup, code=body.code, at=utcnow())


@router.get("/{meetup_id}/attendance", response_model=list[AttendeePublic])
async def attendance(community_id: str, meetup_id: str, caller: StaffOf, session: SessionDep) -> list[AttendeePublic]:
    """Confirmed registrants and when each checked in (null: not there; owner/admin)."""
    meetup = await service.get(session, community_id=community_id, meetup_id=meetup_id)
    return await service.attendance(session, meetup=meetup)
