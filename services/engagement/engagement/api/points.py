"""A member's points (and why), leaderboards and standings."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from engagement.api.deps import MemberOf
from engagement.api.schemas import (
    ActivityPublic,
    LeaderboardEntryPublic,
    LeaderboardPublic,
    LedgerEntryPublic,
    PointsPublic,
    StandingPublic,
)
from engagement.leaderboard import service
from engagement.models import Activity, MemberScore, PointsLedger
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}", tags=["points"])

WindowQ = Annotated[Literal["7d", "30d", "all"], Query(description="7d, 30d or all (days cut in the community's zone)")]
GroupQ = Annotated[str | None, Query(max_length=200, description="Only points earned in this chat group.")]


@router.get("/members/{person_id}/points", response_model=PointsPublic)
async def member_points(
    community_id: str,
    person_id: str,
    caller: MemberOf,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PointsPublic:
    """A member's total, level and ledger entries, newest first: each says which rule gave the points and why."""
    await service.community(session, community_id)
    where = (PointsLedger.community_id == community_id, PointsLedger.person_id == person_id)
    entries = (await session.execute(
        select(PointsLedger).where(*where).order_by(PointsLedger.id.desc()).offset(offset).limit(limit)
    )).scalars().all()
    count = await session.scalar(select(func.count()).select_from(PointsLedger).where(*where))
    by_type = dict((await session.execute(
        select(PointsLedger.rule_type, func.sum(PointsLedger.points)).where(*where).group_by(PointsLedger.rule_type)
    )).all())
    score = await session.get(MemberScore, (community_id, person_id))
    return PointsPublic(
        person_id=person_id,
        total_points=score.total_points if score else 0,
        level=score.level if score else 1,
        by_rule_type={k: int(v) for k, v in by_type.items() if v},
        entries=[LedgerEntryPublic.model_validate(e, from_attributes=True) for e in entries],
        count=int(count or 0),
    )


@router.get("/members/{person_id}/activities", response_model=list[ActivityPublic])
async def member_activities(
    community_id: str,
    person_id: str,
    caller: MemberOf,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ActivityPublic]:
    """What a member did, newest first, with the classifier's verdict (e.g. why a message did not count)."""
    rows = (await session.execute(
        select(Activity).where(Activity.community_id == community_id, Activity.person_id == person_id)
        .order_by(Activity.id.desc()).limit(limit)
    )).scalars().all()
    return [ActivityPublic.model_validate(a, from_attributes=True) for a in rows]


@router.get("/leaderboard", response_model=LeaderboardPublic)
async def leaderboard(
    community_id: str,
    caller: MemberOf,
    session: SessionDep,
    window: WindowQ = "all",
    group_id: GroupQ = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
) -> LeaderboardPublic:
    """Members by points over the window, per community or per chat group (ties share a rank)."""
    entries = await service.leaderboard(
        session, community_id=community_id, window=window, group_id=group_id, limit=limit, offset=offset
    )
    c = await service.community(session, community_id)
    return LeaderboardPublic(
        community_id=community_id, window=window, group_id=group_id, since=service.first_day(window, c.timezone),
        data=[LeaderboardEntryPublic(**e.__dict__) for e in entries],
    )


@router.get("/members/{person_id}/standing", response_model=StandingPublic)
async def standing(
    community_id: str, person_id: str, caller: MemberOf, session: SessionDep, window: WindowQ = "all",
    group_id: GroupQ = None,
) -> StandingPublic:
    """Where a member stands: rank, points, points to the next level and to the top 10."""
    result = await service.standing(
        session, community_id=community_id, person_id=person_id, window=window, group_id=group_id
    )
    return StandingPublic(**result.__dict__)
