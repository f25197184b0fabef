"""Polls (投票): create, vote (chat `投票 2` or API), live counts, close and broadcast the results."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from engagement.activities import polls as service
from engagement.activities.schemas import PollCreate, PollPublic, PollResults, VoteBody, VotePublic
from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.models import Poll
from qunzhu_common.actor import require_self_unless_staff
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}/polls", tags=["activities"])


@router.post("", response_model=PollPublic, status_code=status.HTTP_201_CREATED)
async def create_poll(community_id: str, caller: StaffOf, body: PollCreate, session: SessionDep, ctx: ContextDep
                      ) -> Poll:
    """Open a poll; the bot announces it in its group with the numbered options."""
    return await service.create(session, ctx, community_id=community_id, data=body)


@router.get("", response_model=list[PollPublic])
async def list_polls(community_id: str, caller: MemberOf, session: SessionDep) -> list[Poll]:
    """Polls, newest first."""
    rows = await session.execute(select(Poll).where(Poll.community_id == community_id)
                                 .order_by(Poll.created_at.desc()))
    return list(rows.scalars())


@router.get("/{poll_id}", response_model=PollPublic)
async def get_poll(community_id: str, poll_id: str, caller: MemberOf, session: SessionDep) -> Poll:
    """One poll."""
    return await service.get(session, community_id=community_id, poll_id=poll_id)


@router.post("/{poll_id}/votes", response_model=VotePublic, status_code=status.HTTP_201_CREATED)
async def vote(community_id: str, poll_id: str, caller: MemberOf, body: VoteBody, session: SessionDep,
               ctx: ContextDep, response: Response) -> VotePublic:
    """Vote (201); the same vote again is 200 `unchanged`; a different one is 200 `changed` where allowed,
    else 409; after the deadline 409 with the reason."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    poll = await service.get(session, community_id=community_id, poll_id=poll_id)
    row, outcome = await service.vote(session, ctx, poll=poll, person_id=body.person_id, choices=body.choices,
                                      at=utcnow())
    if outcome != "new":
        response.status_code = status.HTTP_200_OK
    return VotePublic(poll_id=row.poll_id, person_id=row.person_id, choices=list(row.choices),
                      voted_at=row.voted_at, changed_at=row.changed_at, outcome=outcome)  # type: ignore[arg-type]


@router.get("/{poll_id}/results", response_model=PollResults)
async def results(community_id: str, poll_id: str, caller: MemberOf, session: SessionDep) -> PollResults:
    """Live counts per option (voters by name only in a named poll)."""
    poll = await service.get(session, community_id=community_id, poll_id=poll_id)
    return await service.results(session, poll=poll)


@router.post("/{poll_id}/close", response_model=PollResults)
async def close(community_id: str, poll_id: str, caller: StaffOf, session: SessionDep, ctx: ContextDep) -> PollResults:
    """Close now (or confirm it closed) and broadcast the results once."""
    poll = await service.get(session, community_id=community_id, poll_id=poll_id)
    return await service.close(session, ctx, poll=poll)
