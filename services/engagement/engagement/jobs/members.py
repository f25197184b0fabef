"""Lurkers (潜水), elimination (末位淘汰) and rule enforcement (群规 strikes).

Only plain members are ever flagged or recommended for removal: never the owner, admins or guests.
Engagement only recommends; membership (the owner) decides and removes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.models import (
    Activity,
    CommunityCopy,
    GroupMember,
    LurkerFlag,
    MemberCopy,
    MemberScore,
    PointsDaily,
    RemovalRecommendation,
)
from engagement.scoring.engine import local_day
from engagement.scoring.rules import ScoringRules
from qunzhu_common.events.contracts.chat import ChatActionRequested, mention_token
from qunzhu_common.events.contracts.engagement import LurkerFlagged, RemovalRecommended
from qunzhu_common.outbox import count_after_commit

ELIGIBLE_STATUS = ("active",)


async def _member_rows(session: AsyncSession, community_id: str) -> list[MemberCopy]:
    rows = await session.execute(
        select(MemberCopy).where(
            MemberCopy.community_id == community_id, MemberCopy.role == "member",
            MemberCopy.status.in_(ELIGIBLE_STATUS),
        )
    )
    return list(rows.scalars())


async def _a_group_of(session: AsyncSession, community_id: str, person_id: str) -> str | None:
    return await session.scalar(
        select(GroupMember.group_id).where(
            GroupMember.community_id == community_id, GroupMember.person_id == person_id, GroupMember.left_at.is_(None)
        ).order_by(GroupMember.joined_at.desc()).limit(1)
    )


async def send_to_member(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, person_id: str, action_id: str, text: str
) -> bool:
    """Ask the gateway's bot to post `text` @-ing the member in a group they are in (False: in no group)."""
    group = await _a_group_of(session, community_id, person_id)
    if group is None:
        return False
    await ctx.emit(session, type="chat.action.requested", community_id=community_id, data=ChatActionRequested(
        action_id=action_id, action="send_message", group_id=group, text=text, member_id=person_id,
        requested_by="engagement",
    ))
    return True


async def flag_lurkers(
    session: AsyncSession, ctx: EngagementContext, *, community: CommunityCopy, rules: ScoringRules, now: datetime
) -> list[LurkerFlag]:
    """Members with no effective activity for `lurker_days` → `lurker.flagged` and a nudge, once per silence."""
    threshold = timedelta(days=rules.lurker_days)
    cutoff = now - threshold
    # One query for the candidates (not one per member): a community can have 100,000 of them.
    last_effective = MemberScore.last_effective_at
    since_expr = func.coalesce(last_effective, MemberCopy.joined_at, MemberCopy.changed_at)
    candidates = (await session.execute(
        select(MemberCopy, last_effective)
        .outerjoin(MemberScore, (MemberScore.community_id == MemberCopy.community_id)
                   & (MemberScore.person_id == MemberCopy.person_id))
        .where(MemberCopy.community_id == community.id, MemberCopy.role == "member",
               MemberCopy.status.in_(ELIGIBLE_STATUS), since_expr <= cutoff)
        .order_by(MemberCopy.person_id)
    )).all()
    previous_flags = dict((await session.execute(
        select(LurkerFlag.person_id, func.max(LurkerFlag.flagged_at))
        .where(LurkerFlag.community_id == community.id).group_by(LurkerFlag.person_id)
    )).all())
    flagged: list[LurkerFlag] = []
    for member, last in candidates:
        since = last or member.joined_at or member.changed_at
        previous = previous_flags.get(member.person_id)
        if previous is not None and (last is None or last < previous):
            continue  # already flagged for this silence
        flag = LurkerFlag(community_id=community.id, person_id=member.person_id, last_effective_at=last,
                          silent_days=(now - since).days, flagged_at=now)
        session.add(flag)
        await session.flush()
        flagged.append(flag)
        if ctx.metrics is not None:
            count_after_commit(session, ctx.metrics.lurkers_flagged)
        await ctx.emit(session, type="lurker.flagged", community_id=community.id, data=LurkerFlagged(
            community_id=community.id, person_id=member.person_id, last_effective_at=last,
            silent_days=flag.silent_days, threshold_days=rules.lurker_days, flagged_at=now,
        ))
        await send_to_member(
            session, ctx, community_id=community.id, person_id=member.person_id, action_id=f"lurker-nudge:{flag.id}",
            text=f"{mention_token(member.person_id)} 好久没见你冒泡了，最近在忙什么？来聊聊你的进展吧～",
        )
    return flagged


async def recommend(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    community_id: str,
    person_id: str,
    reason: str,
    period: str,
    detail: str,
    evidence: dict,
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
) -> bool:
    """Record and announce one `removal.recommended`; False when this one was already made."""
    inserted = await insert_ignore(session, RemovalRecommendation, dict(
        community_id=community_id, person_id=person_id, reason=reason, period=period, detail=detail,
        evidence=evidence, recommended_at=now,
    ))
    if not inserted:
        return False
    if ctx.metrics is not None:
        count_after_commit(session, ctx.metrics.removals_recommended.labels(reason))
    await ctx.emit(session, type="removal.recommended", community_id=community_id, data=RemovalRecommended(
        community_id=community_id, member_id=person_id, reason=reason, detail=detail, evidence=evidence,
        window_start=window[0] if window else None, window_end=window[1] if window else None, recommended_at=now,
    ))
    return True


async def recommend_eliminations(
    session: AsyncSession, ctx: EngagementContext, *, community: CommunityCopy, rules: ScoringRules, now: datetime
) -> list[str]:
    """The bottom N members by points over the window, none younger than the window (once per window)."""
    if rules.elimination_bottom_n == 0:
        return []
    window = timedelta(days=rules.elimination_window_days)
    start = now - window
    # Windows are counted from the community's creation, so a re-run inside a window repeats nothing.
    period = f"window-{int((now - community.created_at) / window)}"
    eligible = [m for m in await _member_rows(session, community.id) if (m.joined_at or m.changed_at) <= start]
    if not eligible:
        return []
    since = local_day(start, community.timezone)
    sums = dict((await session.execute(
        select(PointsDaily.person_id, func.sum(PointsDaily.points)).where(
            PointsDaily.community_id == community.id, PointsDaily.day >= since,
            PointsDaily.person_id.in_([m.person_id for m in eligible]),
        ).group_by(PointsDaily.person_id)
    )).all())
    ranked = sorted(eligible, key=lambda m: (int(sums.get(m.person_id) or 0), m.person_id))
    bottom = ranked[: rules.elimination_bottom_n]
    chosen = []
    for position, member in enumerate(bottom, start=1):
        points = int(sums.get(member.person_id) or 0)
        evidence = {
            "points_in_window": points, "window_days": rules.elimination_window_days,
            "rank_from_bottom": position, "bottom_n": rules.elimination_bottom_n, "eligible_members": len(eligible),
        }
        if await recommend(
            session, ctx, community_id=community.id, person_id=member.person_id, reason="elimination", period=period,
            detail=f"{points} points in the last {rules.elimination_window_days} days: "
                   f"#{position} from the bottom of {len(eligible)}",
            evidence=evidence, now=now, window=(start, now),
        ):
            chosen.append(member.person_id)
    return chosen


async def on_strike(
    session: AsyncSession, ctx: EngagementContext, *, activity: Activity, rules: ScoringRules, strikes: int
) -> None:
    """A 群规 strike (bare link, ad, repeat) of a plain member, their `strikes`-th: warn; at the limit,
    recommend removal. (Owners, admins and guests are never struck: the caller checks the role.)"""
    if strikes >= rules.strike_limit:
        await recommend(
            session, ctx, community_id=activity.community_id, person_id=activity.person_id,
            reason="rule_violation", period=f"strikes-{rules.strike_limit}",
            detail=f"{strikes} rule violations (limit {rules.strike_limit}), the last: {activity.strike}",
            evidence={"strikes": strikes, "strike_limit": rules.strike_limit, "last_strike": activity.strike or ""},
            now=activity.occurred_at,
        )
        return
    if activity.group_id:
        await ctx.emit(session, type="chat.action.requested", community_id=activity.community_id,
                       data=ChatActionRequested(
                           action_id=f"strike-warning:{activity.source_event_id}", action="send_message",
                           group_id=activity.group_id, member_id=activity.person_id, requested_by="engagement",
                           text=f"{mention_token(activity.person_id)} 提醒（{strikes}/{rules.strike_limit}）："
                                f"分享链接请附上介绍（是什么、为什么推荐），"
                                f"请勿发广告或刷屏。",
                       ))
