"""Leaderboards and a member's standing, read from the running figures, never from the ledger.

All time per community reads `member_score` (indexed by total); windows and groups read
`points_daily`, whose days are local days of the community's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.errors import CommunityNotFound
from engagement.leaderboard.ranking import windowed_ranking
from engagement.models import CommunityCopy, MemberCopy, MemberScore, PointsDaily
from engagement.scoring.engine import local_day
from engagement.scoring.ruleset import current_rules
from qunzhu_common.timeutil import utcnow

Window = Literal["7d", "30d", "all"]
WINDOW_DAYS = {"7d": 7, "30d": 30}
TOP_N = 10


@dataclass
class Entry:
    rank: int
    person_id: str
    display_name: str
    points: int


@dataclass
class Standing:
    person_id: str
    window: str
    group_id: str | None
    rank: int
    points: int
    members_ranked: int
    total_points: int
    level: int
    next_level: int | None
    next_level_at: int | None
    points_to_next_level: int | None
    top10_points: int | None
    points_to_top10: int


async def community(session: AsyncSession, community_id: str) -> CommunityCopy:
    row = await session.get(CommunityCopy, community_id)
    if row is None:
        raise CommunityNotFound(f"engagement does not know community {community_id}")
    return row


def first_day(window: str, timezone: str, now: datetime | None = None) -> date | None:
    if window == "all":
        return None
    today = local_day(now or utcnow(), timezone)
    return today - timedelta(days=WINDOW_DAYS[window] - 1)


def _scores(community_id: str, window: str, group_id: str | None, since: date | None) -> Select:
    """(person_id, points) of everyone with points in the window."""
    if window == "all" and group_id is None:
        return select(MemberScore.person_id.label("person_id"), MemberScore.total_points.label("points")).where(
            MemberScore.community_id == community_id
        )
    points = func.sum(PointsDaily.points).label("points")
    query = select(PointsDaily.person_id.label("person_id"), points).where(PointsDaily.community_id == community_id)
    if since is not None:
        query = query.where(PointsDaily.day >= since)
    if group_id is not None:
        query = query.where(PointsDaily.group_id == group_id)
    return query.group_by(PointsDaily.person_id)


async def leaderboard(
    session: AsyncSession,
    *,
    community_id: str,
    window: str,
    group_id: str | None = None,
    limit: int = TOP_N,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Entry]:
    c = await community(session, community_id)
    if window == "all" and group_id is None:
        query = _scores(community_id, window, None, None).where(MemberScore.total_points > 0).order_by(
            MemberScore.total_points.desc(), MemberScore.person_id
        )
        page = [(r.person_id, int(r.points)) for r in await session.execute(query.offset(offset).limit(limit))]
        ranking = None
    else:
        ranking = await windowed_ranking(
            session, community_id=community_id, since=first_day(window, c.timezone, now), group_id=group_id
        )
        page = list(zip(ranking.people[offset:offset + limit], ranking.points[offset:offset + limit], strict=True))
    names = await _names(session, community_id, [person for person, _ in page])
    entries: list[Entry] = []
    for person, points in page:
        # Competition ranking: equal points share a rank.
        if entries and entries[-1].points == points:
            rank = entries[-1].rank
        elif not entries and offset:
            rank = (ranking.rank_of_points(points) if ranking is not None
                    else await _rank_of(session, community_id, window, group_id, c.timezone, points, now))
        else:
            rank = offset + len(entries) + 1
        entries.append(Entry(rank, person, names.get(person, ""), points))
    return entries


async def _names(session: AsyncSession, community_id: str, people: list[str]) -> dict[str, str]:
    if not people:
        return {}
    rows = await session.execute(
        select(MemberCopy.person_id, MemberCopy.display_name).where(
            MemberCopy.community_id == community_id, MemberCopy.person_id.in_(people)
        )
    )
    return {r.person_id: r.display_name for r in rows}


async def _rank_of(
    session: AsyncSession, community_id: str, window: str, group_id: str | None, timezone: str, points: int,
    now: datetime | None,
) -> int:
    sub = _scores(community_id, window, group_id, first_day(window, timezone, now)).subquery()
    above = await session.scalar(select(func.count()).select_from(sub).where(sub.c.points > points))
    return int(above or 0) + 1


async def standing(
    session: AsyncSession,
    *,
    community_id: str,
    person_id: str,
    window: str = "all",
    group_id: str | None = None,
    now: datetime | None = None,
) -> Standing:
    """Where a member is: rank, points, how far the next level and the top 10 are."""
    c = await community(session, community_id)
    since = first_day(window, c.timezone, now)
    if window == "all" and group_id is None:
        sub = _scores(community_id, window, group_id, since).subquery()
        mine = int(await session.scalar(select(sub.c.points).where(sub.c.person_id == person_id)) or 0)
        above = int(await session.scalar(select(func.count()).select_from(sub).where(sub.c.points > mine)) or 0)
        ranked = int(await session.scalar(select(func.count()).select_from(sub).where(sub.c.points > 0)) or 0)
        tenth = await session.scalar(
            select(sub.c.points).where(sub.c.points > 0).order_by(sub.c.points.desc()).offset(TOP_N - 1).limit(1)
        )
    else:
        ranking = await windowed_ranking(session, community_id=community_id, since=since, group_id=group_id)
        mine = ranking.by_person.get(person_id, 0)
        above, ranked = ranking.above(mine), len(ranking.people)
        tenth = ranking.points[TOP_N - 1] if ranked >= TOP_N else None
    score = await session.get(MemberScore, (community_id, person_id))
    total = score.total_points if score else 0
    _, rules = await current_rules(session, community_id=community_id)
    level = rules.level_for(total)
    next_at = rules.next_threshold(total)
    in_top = above < TOP_N and mine > 0
    return Standing(
        person_id=person_id,
        window=window,
        group_id=group_id,
        rank=above + 1,
        points=mine,
        members_ranked=ranked,
        total_points=total,
        level=level,
        next_level=level + 1 if next_at is not None else None,
        next_level_at=next_at,
        points_to_next_level=next_at - total if next_at is not None else None,
        top10_points=int(tenth) if tenth is not None else None,
        # To enter the top 10, pass the 10th (ties share the rank, so equalling them is enough).
        points_to_top10=0 if in_top else (max(1, int(tenth) - mine) if tenth is not None else max(1 - mine, 0)),
    )
