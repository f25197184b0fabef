"""Replay and recompute: the engagement state is a function of the stored activity history.

- `rebuild` throws the derived state of a community away (ledger, totals, per-day figures, levels)
  and scores every stored activity again, in the order it was first scored, under the rule
  versions in force when each happened. Nothing is announced again.
- `recompute` applies a (new) rule version to history from a time on, live: it appends reversals of
  the old entries, then scores the same activities again; the ledger stays append-only.
- `snapshot` is what must be equal between the live state and a rebuilt one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import REPLAY, EngagementContext
from engagement.leaderboard.service import community as get_community
from engagement.models import Activity, MemberScore, PointsDaily, PointsLedger
from engagement.scoring.engine import score_activities
from engagement.scoring.ledger import write_entry
from engagement.scoring.ruleset import rules_at

BATCH = 1000


async def snapshot(session: AsyncSession, *, community_id: str) -> dict[str, Any]:
    """Everything a member or an operator can see, in comparable form."""
    net: dict[tuple, int] = defaultdict(int)
    rows = await session.execute(
        select(PointsLedger.source_event_id, PointsLedger.person_id, PointsLedger.rule_type, PointsLedger.day,
               PointsLedger.group_id, PointsLedger.points).where(PointsLedger.community_id == community_id)
    )
    for source, person, rule_type, day, group, points in rows:
        net[(source, person, rule_type, day.isoformat(), group)] += points
    scores = await session.execute(
        select(MemberScore.person_id, MemberScore.total_points, MemberScore.level, MemberScore.last_effective_at)
        .where(MemberScore.community_id == community_id)
    )
    daily = await session.execute(
        select(PointsDaily.day, PointsDaily.group_id, PointsDaily.person_id, PointsDaily.points)
        .where(PointsDaily.community_id == community_id, PointsDaily.points != 0)
    )
    activities = await session.execute(
        select(Activity.source_event_id, Activity.kind, Activity.rule_type, Activity.points, Activity.strike)
        .where(Activity.community_id == community_id, Activity.status == "scored")
    )
    return {
        "ledger": {"|".join(map(str, k)): v for k, v in sorted(net.items()) if v},
        "scores": {p: [t, lv, e.isoformat() if e else None] for p, t, lv, e in sorted(scores.all())},
        "daily": {f"{d.isoformat()}|{g}|{p}": v for d, g, p, v in sorted(daily.all())},
        "activities": {f"{s}|{k}": [r, pts, st] for s, k, r, pts, st in sorted(activities.all(), key=str)},
    }


async def ledger_rows(session: AsyncSession, *, community_id: str) -> list[tuple]:
    """The ledger itself minus storage details (ids, write times), for an exact comparison."""
    rows = await session.execute(
        select(PointsLedger.source_event_id, PointsLedger.rule, PointsLedger.kind, PointsLedger.revision,
               PointsLedger.person_id, PointsLedger.points, PointsLedger.day, PointsLedger.group_id,
               PointsLedger.reason).where(PointsLedger.community_id == community_id)
        .order_by(PointsLedger.id)
    )
    return [tuple(r) for r in rows]


async def _scored_in_order(session: AsyncSession, community_id: str, since: datetime | None = None):  # noqa: ANN202
    """The community's scored activities in scoring order, in chunks of BATCH."""
    last = 0
    while True:
        query = select(Activity).where(
            Activity.community_id == community_id, Activity.status == "scored", Activity.scored_seq > last
        )
        if since is not None:
            query = query.where(Activity.occurred_at >= since)
        batch = (await session.execute(query.order_by(Activity.scored_seq).limit(BATCH))).scalars().all()
        if not batch:
            return
        yield list(batch)
        last = batch[-1].scored_seq or last


async def rebuild(session: AsyncSession, *, community_id: str) -> int:
    """Rebuild the community's ledger and figures from its activity history; returns activities scored."""
    community = await get_community(session, community_id)
    for model in (PointsLedger, MemberScore, PointsDaily):
        await session.execute(delete(model).where(model.community_id == community_id))  # type: ignore[attr-defined]
    count = 0
    async for batch in _scored_in_order(session, community_id):
        await score_activities(session, REPLAY, activities=batch, communities={community_id: community},
                               seqs=[a.scored_seq for a in batch], same_rules=True)
        count += len(batch)
    await session.flush()
    return count


async def recompute(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, since: datetime
) -> int:
    """Re-score history from `since` under the versions now in force; the ledger only grows."""
    community = await get_community(session, community_id)
    affected = [a async for batch in _scored_in_order(session, community_id, since) for a in batch]
    # Reverse everything first, so caps and cooldown slots see only what stays (history before `since`).
    for activity in affected:
        entries = (await session.execute(
            select(PointsLedger).where(
                PointsLedger.activity_id == activity.id, PointsLedger.revision == activity.revision,
                PointsLedger.kind == "award",
            )
        )).scalars().all()
        version, rules = await rules_at(session, community_id=community_id, at=activity.occurred_at)
        for entry in entries:
            await write_entry(
                session, ctx, activity=activity, rule_type=entry.rule_type, version=entry.rule_set_version,
                rules=rules, points=-entry.points, kind="reversal", revision=activity.revision,
                reason=f"reversed for a recompute under rules v{version}",
            )
    for activity in affected:
        activity.revision += 1
    for start in range(0, len(affected), BATCH):
        batch = affected[start:start + BATCH]
        await score_activities(
            session, EngagementContext(outbox=ctx.outbox, metrics=ctx.metrics, hooks=False),
            activities=batch, communities={community_id: community}, seqs=[a.scored_seq for a in batch],
        )
    await session.flush()
    return len(affected)
