"""Community goals with progress ("46万 of 50万 reached")."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.errors import InvalidRules, ThingNotFound
from engagement.models import Activity, CommunityGoal, GoalCreate, GoalPublic, MemberCopy, PointsDaily
from engagement.scoring.engine import EFFECTIVE_TYPES, local_day
from qunzhu_common.events.contracts.engagement import GoalReached
from qunzhu_common.timeutil import utcnow


def wan(n: int) -> str:
    """Chinese count in 万 (10,000) as operators write it: 460000 → 46万."""
    if abs(n) >= 10_000:
        return f"{n / 10_000:.2f}".rstrip("0").rstrip(".") + "万"
    return str(n)


async def create_goal(session: AsyncSession, *, community_id: str, data: GoalCreate) -> CommunityGoal:
    now = utcnow()
    starts_at = data.starts_at or now
    if data.ends_at is not None and data.ends_at <= starts_at:
        raise InvalidRules("ends_at must be after starts_at", errors=[{"loc": ["body", "ends_at"], "msg": "too early"}])
    goal = CommunityGoal(
        community_id=community_id, title=data.title, metric=data.metric, target=data.target,
        starts_at=starts_at, ends_at=data.ends_at, created_at=now,
    )
    session.add(goal)
    await session.flush()
    _HAS_OPEN.pop((str(session.bind.url), community_id), None)
    return goal


async def goal_value(session: AsyncSession, *, goal: CommunityGoal, timezone: str) -> int:
    if goal.metric == "points":
        query = select(func.coalesce(func.sum(PointsDaily.points), 0)).where(
            PointsDaily.community_id == goal.community_id, PointsDaily.day >= local_day(goal.starts_at, timezone)
        )
        if goal.ends_at is not None:
            query = query.where(PointsDaily.day <= local_day(goal.ends_at, timezone))
        return int(await session.scalar(query) or 0)
    if goal.metric == "members":
        return int(await session.scalar(
            select(func.count()).select_from(MemberCopy).where(
                MemberCopy.community_id == goal.community_id, MemberCopy.status == "active"
            )
        ) or 0)
    kinds = ("checkin",) if goal.metric == "checkins" else tuple(EFFECTIVE_TYPES)
    query = select(func.count()).select_from(Activity).where(
        Activity.community_id == goal.community_id,
        Activity.status == "scored",
        Activity.rule_type.in_(kinds),
        Activity.occurred_at >= goal.starts_at,
    )
    if goal.ends_at is not None:
        query = query.where(Activity.occurred_at < goal.ends_at)
    return int(await session.scalar(query) or 0)


def public(goal: CommunityGoal, value: int) -> GoalPublic:
    return GoalPublic(
        id=goal.id, title=goal.title, metric=goal.metric, target=goal.target, value=value,
        percent=round(min(100.0, 100.0 * value / goal.target), 1), remaining=max(0, goal.target - value),
        progress_text=f"{wan(value)} of {wan(goal.target)}", starts_at=goal.starts_at, ends_at=goal.ends_at,
        reached_at=goal.reached_at,
    )


async def list_goals(session: AsyncSession, *, community_id: str, timezone: str) -> list[GoalPublic]:
    goals = (await session.execute(
        select(CommunityGoal).where(CommunityGoal.community_id == community_id).order_by(CommunityGoal.created_at)
    )).scalars().all()
    return [public(g, await goal_value(session, goal=g, timezone=timezone)) for g in goals]


async def get_goal(session: AsyncSession, *, community_id: str, goal_id: str, timezone: str) -> GoalPublic:
    goal = await session.get(CommunityGoal, goal_id)
    if goal is None or goal.community_id != community_id:
        raise ThingNotFound(f"goal {goal_id} does not exist in community {community_id}")
    return public(goal, await goal_value(session, goal=goal, timezone=timezone))


# Whether a community has open goals, per (database, community), for a few seconds: the check runs
# after every scored activity and most communities have none. A goal created in this process drops the
# entry; one created through another replica is seen within the TTL.
OPEN_GOALS_TTL_S = 5.0
_HAS_OPEN: dict[tuple[str, str], tuple[float, bool]] = {}


async def check_goals(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, timezone: str, at: datetime
) -> None:
    """Mark open goals reached (once) and announce them; called after each scored activity."""
    key = (str(session.bind.url), community_id)
    cached = _HAS_OPEN.get(key)
    if cached is not None and cached[0] > time.monotonic() and not cached[1]:
        return
    open_goals = (await session.execute(
        select(CommunityGoal).where(CommunityGoal.community_id == community_id, CommunityGoal.reached_at.is_(None))
    )).scalars().all()
    if len(_HAS_OPEN) > 10_000:
        _HAS_OPEN.clear()
    _HAS_OPEN[key] = (time.monotonic() + OPEN_GOALS_TTL_S, bool(open_goals))
    for goal in open_goals:
        if goal.starts_at > at or (goal.ends_at is not None and at >= goal.ends_at):
            continue
        value = await goal_value(session, goal=goal, timezone=timezone)
        if value >= goal.target:
            goal.reached_at = at
            await ctx.emit(session, type="goal.reached", community_id=community_id, data=GoalReached(
                community_id=community_id, goal_id=goal.id, title=goal.title, target=goal.target, value=value,
                reached_at=at,
            ))
