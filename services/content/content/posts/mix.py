"""Content mix (002): share of published articles per level vs the community's target.

Default target 30 / 50 / 20 % (beginner / intermediate / advanced) over the last 4 weeks; a
`content_mix.deviated` warning when a share is more than the threshold (default 10 points) off —
once per change of the set of off levels, not at every post.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.context import ContentContext
from content.models import ContentMixTarget, Post
from qunzhu_common.events.contracts.content import ContentMixDeviated, LevelShare

LEVELS = ("beginner", "intermediate", "advanced")
MIN_POSTS = 5  # below this the shares say nothing yet


async def targets_of(session: AsyncSession, *, community_id: str) -> ContentMixTarget | None:
    return await session.get(ContentMixTarget, community_id)


def _targets(row: ContentMixTarget | None) -> dict[str, float]:
    if row is None:
        return {"beginner": 30.0, "intermediate": 50.0, "advanced": 20.0}
    return {"beginner": row.beginner_pct, "intermediate": row.intermediate_pct, "advanced": row.advanced_pct}


async def report(
    session: AsyncSession, *, ctx: ContentContext, community_id: str, now: datetime, days: int | None = None
) -> tuple[list[LevelShare], list[str], int]:
    """Shares per level over the window, the levels off target, and the number of posts counted."""
    days = days or ctx.settings.content_mix_window_days
    counts = dict(
        (
            await session.execute(
                select(Post.level, func.count())
                .where(
                    Post.community_id == community_id,
                    Post.kind == "article",
                    Post.state.in_(("published", "archived")),
                    Post.level.is_not(None),
                    Post.published_at >= now - timedelta(days=days),
                )
                .group_by(Post.level)
            )
        ).all()
    )
    total = sum(counts.values())
    targets = _targets(await targets_of(session, community_id=community_id))
    shares = [
        LevelShare(
            level=level,
            target_pct=targets[level],
            posts=counts.get(level, 0),
            actual_pct=round(100.0 * counts.get(level, 0) / total, 1) if total else 0.0,
        )
        for level in LEVELS
    ]
    threshold = ctx.settings.content_mix_threshold_pct
    off = [s.level for s in shares if total >= MIN_POSTS and abs(s.actual_pct - s.target_pct) > threshold]
    return shares, off, total


async def set_targets(
    session: AsyncSession, *, community_id: str, beginner: float, intermediate: float, advanced: float, now: datetime
) -> ContentMixTarget:
    row = await targets_of(session, community_id=community_id)
    if row is None:
        row = ContentMixTarget(community_id=community_id, updated_at=now)
        session.add(row)
    row.beginner_pct, row.intermediate_pct, row.advanced_pct, row.updated_at = beginner, intermediate, advanced, now
    await session.flush()
    return row


async def check_mix(session: AsyncSession, *, ctx: ContentContext, community_id: str, now: datetime) -> bool:
    """Warn when the set of off-target levels becomes non-empty or changes; True when warned."""
    shares, off, _total = await report(session, ctx=ctx, community_id=community_id, now=now)
    row = await targets_of(session, community_id=community_id)
    if row is None:
        row = ContentMixTarget(community_id=community_id, updated_at=now)
        session.add(row)
    previous = list(row.off_levels or [])
    if off == previous:
        return False
    row.off_levels = off
    if not off:
        return False
    days = ctx.settings.content_mix_window_days
    await ctx.outbox.emit(
        session,
        type="content_mix.deviated",
        community_id=community_id,
        data=ContentMixDeviated(
            community_id=community_id,
            window_days=days,
            threshold_pct=ctx.settings.content_mix_threshold_pct,
            shares=shares,
            off_levels=off,
            checked_at=now,
        ),
    )
    return True
