"""Check-in challenges (打卡): create, progress with streaks, the check-in leaderboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from engagement.api.deps import MemberOf, StaffOf
from engagement.checkins import service
from engagement.leaderboard.service import community
from engagement.models import ChallengeCreate, ChallengeProgress, ChallengePublic, CheckinChallenge
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/challenges", tags=["check-in challenges"])


@router.post("", response_model=ChallengePublic, status_code=status.HTTP_201_CREATED)
async def create_challenge(community_id: str, caller: StaffOf, body: ChallengeCreate, session: SessionDep
                           ) -> CheckinChallenge:
    """Start a check-in challenge (e.g. 21 days, 05:00–09:00 each day); `打卡` in chat counts for it."""
    return await service.create_challenge(session, community=await community(session, community_id), data=body)


@router.get("", response_model=list[ChallengePublic])
async def list_challenges(community_id: str, caller: MemberOf, session: SessionDep) -> list[CheckinChallenge]:
    """The community's challenges, newest first."""
    rows = await session.execute(
        select(CheckinChallenge).where(CheckinChallenge.community_id == community_id)
        .order_by(CheckinChallenge.created_at.desc())
    )
    return list(rows.scalars())


@router.get("/{challenge_id}", response_model=ChallengePublic)
async def get_challenge(community_id: str, challenge_id: str, caller: MemberOf, session: SessionDep
                        ) -> CheckinChallenge:
    """One challenge."""
    return await service.get_challenge(session, community_id=community_id, challenge_id=challenge_id)


@router.get("/{challenge_id}/leaderboard", response_model=list[ChallengeProgress])
async def challenge_leaderboard(
    community_id: str, challenge_id: str, caller: MemberOf, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ChallengeProgress]:
    """Participants by check-in days, then longest streak."""
    c = await community(session, community_id)
    challenge = await service.get_challenge(session, community_id=community_id, challenge_id=challenge_id)
    return await service.leaderboard(session, challenge=challenge, timezone=c.timezone, limit=limit)


@router.get("/{challenge_id}/members/{person_id}", response_model=ChallengeProgress)
async def challenge_progress(
    community_id: str, challenge_id: str, person_id: str, caller: MemberOf, session: SessionDep
) -> ChallengeProgress:
    """A member's days, current and longest streak, and how many days are still needed."""
    c = await community(session, community_id)
    challenge = await service.get_challenge(session, community_id=community_id, challenge_id=challenge_id)
    return await service.progress(session, challenge=challenge, timezone=c.timezone, person_id=person_id)
