"""Sub-domains that react to a freshly scored activity (live only: replay announces nothing again)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from engagement.checkins.service import on_checkin
from engagement.context import EngagementContext
from engagement.jobs.members import on_strike
from engagement.leaderboard.goals import check_goals
from engagement.models import Activity, CommunityCopy
from engagement.scoring.rules import ScoringRules


async def after_scoring(
    session: AsyncSession, ctx: EngagementContext, *, activity: Activity, rules: ScoringRules
) -> None:
    community = await session.get(CommunityCopy, activity.community_id)
    if community is None:
        return
    await check_goals(session, ctx, community_id=activity.community_id, timezone=community.timezone,
                      at=activity.occurred_at)
    if activity.kind == "checkin":
        await on_checkin(session, ctx, activity=activity, community=community)
    if activity.strike:
        await on_strike(session, ctx, activity=activity, rules=rules)
