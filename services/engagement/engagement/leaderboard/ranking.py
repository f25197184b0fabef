"""Windowed rankings (7 d, 30 d, per group) as a sorted list, cached briefly for large communities.

All-time ranks come straight from the `member_score` index. A window has no running total: it is
the sum of `points_daily` rows over the window's days, one aggregate per read. In a community of
100,000 members that is a few hundred thousand rows, so past CACHE_MIN_PEOPLE ranked people the
aggregate is kept for CACHE_TTL_S seconds and reads (top N, a member's rank, the 10th's points) are
answered from it; smaller communities always read fresh figures.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.models import PointsDaily

CACHE_TTL_S = 15.0
CACHE_MIN_PEOPLE = 2000


@dataclass
class Ranking:
    """People with points > 0, best first (ties by person id); `negated` is ascending for bisect."""

    people: list[str]
    points: list[int]
    negated: list[int] = field(init=False)
    by_person: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.negated = [-p for p in self.points]
        self.by_person = dict(zip(self.people, self.points, strict=True))

    def above(self, points: int) -> int:
        """How many people have strictly more points."""
        return bisect.bisect_left(self.negated, -points)

    def rank_of_points(self, points: int) -> int:
        return self.above(points) + 1


_CACHE: dict[tuple, tuple[float, Ranking]] = {}


async def windowed_ranking(
    session: AsyncSession, *, community_id: str, since: date | None, group_id: str | None
) -> Ranking:
    key = (str(session.bind.url), community_id, since, group_id)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    total = func.sum(PointsDaily.points)
    query = select(PointsDaily.person_id, total).where(PointsDaily.community_id == community_id)
    if since is not None:
        query = query.where(PointsDaily.day >= since)
    if group_id is not None:
        query = query.where(PointsDaily.group_id == group_id)
    rows = (await session.execute(
        query.group_by(PointsDaily.person_id).having(total > 0).order_by(total.desc(), PointsDaily.person_id)
    )).all()
    ranking = Ranking(people=[r[0] for r in rows], points=[int(r[1]) for r in rows])
    if len(rows) >= CACHE_MIN_PEOPLE:
        if len(_CACHE) > 1000:
            _CACHE.clear()
        _CACHE[key] = (time.monotonic() + CACHE_TTL_S, ranking)
    return ranking
