"""Group health (群的生命周期): activity ratios per chat group and the dead-group (僵尸群) risk flag.

A group's daily active ratio is the share of its members who did something effective that local
day. The risk flag compares the last 7 days with the group's first 30 days: below `dead_group_share`
of that baseline, operators are told before the group is dead.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.models import Activity, CommunityCopy, DeadGroupFlag, GroupMember, KeyPeopleSnapshot
from engagement.scoring.engine import EFFECTIVE_TYPES
from engagement.scoring.recall import RECALLED
from engagement.scoring.rules import ScoringRules
from qunzhu_common.events.contracts.engagement import DeadGroupFlagged
from qunzhu_common.outbox import count_after_commit

SPEAKING = ("message", "checkin", "homework", "question", "signup_chain")
BASELINE_DAYS = 30
RECENT_DAYS = 7


def _avg_daily_ratio(active_by_day: dict[Any, set[str]], days: list[Any], members: int) -> float:
    if not days or members <= 0:
        return 0.0
    return sum(len(active_by_day.get(d, ())) for d in days) / (len(days) * members)


async def _groups(session: AsyncSession, community_id: str) -> list[str]:
    rows = await session.execute(
        select(Activity.group_id).where(Activity.community_id == community_id, Activity.group_id != "").distinct()
    )
    return sorted(r for (r,) in rows)


async def group_health(
    session: AsyncSession, *, community: CommunityCopy, rules: ScoringRules, now: datetime, group_id: str
) -> dict[str, Any]:
    zone = ZoneInfo(community.timezone)
    # Only what happened by `now`: asked as of an earlier time (the console's 14-day trend), later activity
    # must not count in that day's 7-day window.
    first = await session.scalar(select(func.min(Activity.occurred_at)).where(
        Activity.community_id == community.id, Activity.group_id == group_id, Activity.occurred_at <= now))
    first = first or now
    roster = set((await session.execute(select(GroupMember.person_id).where(
        GroupMember.community_id == community.id, GroupMember.group_id == group_id, GroupMember.left_at.is_(None),
    ))).scalars())
    recent_start = now - timedelta(days=RECENT_DAYS)
    baseline_end = min(first + timedelta(days=BASELINE_DAYS), now)
    rows = (await session.execute(select(
        Activity.person_id, Activity.occurred_at, Activity.kind, Activity.rule_type
    ).where(
        Activity.community_id == community.id, Activity.group_id == group_id,
        (Activity.occurred_at >= recent_start) | (Activity.occurred_at < baseline_end), Activity.occurred_at <= now,
        Activity.status != RECALLED,  # a withdrawn message is no activity
    ))).all()
    members = len(roster) or len({r.person_id for r in rows})
    recent_active: dict[Any, set[str]] = defaultdict(set)
    baseline_active: dict[Any, set[str]] = defaultdict(set)
    effective = speaking = joins = leaves = red_packets = 0
    kinds_by_person: dict[str, set[str]] = defaultdict(set)
    for person, at, kind, rule_type in rows:
        day = at.astimezone(zone).date()
        is_effective = rule_type in EFFECTIVE_TYPES
        if at < baseline_end and is_effective:
            baseline_active[day].add(person)
        if at < recent_start:
            continue
        if kind in SPEAKING:
            speaking += 1
            effective += is_effective
            kinds_by_person[person].add("effective" if is_effective else "noise")
        if is_effective:
            recent_active[day].add(person)
        joins += kind == "group_join"
        leaves += kind == "group_leave"
        red_packets += kind == "red_packet"
    today = now.astimezone(zone).date()
    recent_days = [today - timedelta(days=i) for i in range(RECENT_DAYS)]
    first_day = first.astimezone(zone).date()
    baseline_days = [first_day + timedelta(days=i) for i in range(max(1, (baseline_end - first).days))]
    ratio_7d = _avg_daily_ratio(recent_active, recent_days, members)
    baseline = _avg_daily_ratio(baseline_active, baseline_days, members)

    latest = (await session.execute(select(KeyPeopleSnapshot.result).where(
        KeyPeopleSnapshot.community_id == community.id).order_by(KeyPeopleSnapshot.computed_at.desc()).limit(1)
    )).scalar_one_or_none()
    leaders = {p["person_id"] for p in (latest or {}).get("opinion_leaders", [])}
    people = roster | set(kinds_by_person)
    kol = {p for p in people if p in leaders and "effective" in kinds_by_person.get(p, ())}
    active = {p for p in people if "effective" in kinds_by_person.get(p, ())} - kol
    reply_one = {p for p in people if kinds_by_person.get(p) == {"noise"}}
    silent = people - kol - active - reply_one
    old_enough = (now - first) >= timedelta(days=BASELINE_DAYS + RECENT_DAYS)
    at_risk = old_enough and baseline > 0 and ratio_7d < rules.dead_group_share * baseline
    return {
        "group_id": group_id, "members": members, "first_activity_at": first,
        "daily_active_ratio_7d": round(ratio_7d, 4), "baseline_active_ratio": round(baseline, 4),
        "effective_share_7d": round(effective / speaking, 4) if speaking else 0.0,
        "messages_7d": speaking, "joins_7d": joins, "leaves_7d": leaves, "red_packets_7d": red_packets,
        "kol": len(kol), "active": len(active), "reply_one": len(reply_one), "silent": len(silent),
        "dead_group_risk": at_risk,
        "warning": "red packets followed by silence" if at_risk and red_packets else "",
    }


async def community_health(
    session: AsyncSession, *, community: CommunityCopy, rules: ScoringRules, now: datetime
) -> list[dict[str, Any]]:
    return [
        await group_health(session, community=community, rules=rules, now=now, group_id=g)
        for g in await _groups(session, community.id)
    ]


async def flag_dead_groups(
    session: AsyncSession, ctx: EngagementContext, *, community: CommunityCopy, rules: ScoringRules, now: datetime
) -> list[str]:
    """Announce each group at risk, at most once a week per group."""
    flagged = []
    for report in await community_health(session, community=community, rules=rules, now=now):
        if not report["dead_group_risk"]:
            continue
        last = await session.scalar(select(func.max(DeadGroupFlag.flagged_at)).where(
            DeadGroupFlag.community_id == community.id, DeadGroupFlag.group_id == report["group_id"]))
        if last is not None and now - last < timedelta(days=RECENT_DAYS):
            continue
        session.add(DeadGroupFlag(community_id=community.id, group_id=report["group_id"],
                                  active_ratio_7d=report["daily_active_ratio_7d"],
                                  baseline_active_ratio=report["baseline_active_ratio"], flagged_at=now))
        flagged.append(report["group_id"])
        if ctx.metrics is not None:
            count_after_commit(session, ctx.metrics.dead_groups_flagged)
        await ctx.emit(session, type="group.dead_flagged", community_id=community.id, data=DeadGroupFlagged(
            community_id=community.id, group_id=report["group_id"], active_ratio_7d=report["daily_active_ratio_7d"],
            baseline_active_ratio=report["baseline_active_ratio"], threshold_share=rules.dead_group_share,
            flagged_at=now,
        ))
    return flagged
