"""AB-group promotion (AB群扩散法): from group A, the members who interact most and give the best
work, as candidates for the core group B."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.errors import NoCoreGroup, NotAnOpenGroup
from engagement.models import (
    Activity,
    CommunityCopy,
    GroupCopy,
    GroupMember,
    MemberCopy,
    PointsDaily,
    Submission,
)
from engagement.scoring.engine import local_day
from engagement.scoring.recall import RECALLED

WINDOW_DAYS = 30
GRADE_WEIGHT = 5  # one grade step is worth as much as five effective messages


async def core_groups(
    session: AsyncSession, *, community_id: str, group_id: str, core_group_id: str | None
) -> set[str]:
    """The B group(s) candidates are promoted to; checks that `group_id` is an open (A) group.

    With an explicit `core_group_id` only a group known to be B is refused as the source (groups membership
    has not told us about yet stay usable, as before); without it the source must be a registered A group
    and the targets are the community's active B groups.
    """
    groups = {g.group_id: g for g in (await session.execute(
        select(GroupCopy).where(GroupCopy.community_id == community_id))).scalars()}
    source = groups.get(group_id)
    if source is not None and source.role == "B":
        raise NotAnOpenGroup(f"{group_id} is a core (B) group; candidates come from open (A) groups")
    if core_group_id:
        return {core_group_id}
    if source is None or source.role != "A":
        raise NotAnOpenGroup(f"{group_id} is not a registered open (A) group of community {community_id}")
    core = {g.group_id for g in groups.values() if g.role == "B" and g.active}
    if not core:
        raise NoCoreGroup(f"community {community_id} has no active core (B) group; register one or pass "
                          "core_group_id")
    return core


async def ab_candidates(
    session: AsyncSession, *, community: CommunityCopy, group_id: str, core_group_ids: set[str], now: datetime,
    limit: int = 10,
) -> list[dict[str, Any]]:
    since = now - timedelta(days=WINDOW_DAYS)
    points = dict((await session.execute(
        select(PointsDaily.person_id, func.sum(PointsDaily.points)).where(
            PointsDaily.community_id == community.id, PointsDaily.group_id == group_id,
            PointsDaily.day >= local_day(since, community.timezone),
        ).group_by(PointsDaily.person_id)
    )).all())
    replies = Counter(other for (other,) in await session.execute(
        select(Activity.other_id).where(
            Activity.community_id == community.id, Activity.group_id == group_id, Activity.kind == "message",
            Activity.other_id.is_not(None), Activity.occurred_at >= since,
            Activity.status != RECALLED,  # a withdrawn reply answers nobody
        )
    ))
    grades = dict((await session.execute(
        select(Submission.person_id, func.avg(Submission.grade)).where(
            Submission.community_id == community.id, Submission.grade.is_not(None)
        ).group_by(Submission.person_id)
    )).all())
    in_core: set[str] = set()
    if core_group_ids:
        in_core = set((await session.execute(select(GroupMember.person_id).where(
            GroupMember.community_id == community.id, GroupMember.group_id.in_(sorted(core_group_ids)),
            GroupMember.left_at.is_(None),
        ))).scalars())
    members = {m.person_id: m for m in (await session.execute(select(MemberCopy).where(
        MemberCopy.community_id == community.id, MemberCopy.status == "active"))).scalars()}
    rows = []
    for person in set(points) | set(replies):
        if person in in_core or person not in members or members[person].role != "member":
            continue
        avg_grade = float(grades.get(person) or 0)
        score = int(points.get(person) or 0) + replies[person] + GRADE_WEIGHT * avg_grade
        if score <= 0:
            continue
        rows.append({
            "person_id": person, "display_name": members[person].display_name, "score": round(score, 2),
            "points_30d": int(points.get(person) or 0), "replies_received_30d": replies[person],
            "average_grade": round(avg_grade, 2) if avg_grade else None,
            "reason": f"{int(points.get(person) or 0)} points and {replies[person]} replies received in group "
                      f"in {WINDOW_DAYS} days" + (f", homework average {avg_grade:.1f}/5" if avg_grade else ""),
        })
    rows.sort(key=lambda r: (-r["score"], r["person_id"]))
    return rows[:limit]
