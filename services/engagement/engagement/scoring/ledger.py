"""Ledger writes and the running figures kept in the same transaction (totals, per-day, levels).

Reads never sum the ledger: leaderboards use `member_score` (all time) and `points_daily` (windows).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.dbutil import increment
from engagement.models import Activity, MemberScore, PointsDaily, PointsLedger
from engagement.scoring.rules import ScoringRules
from qunzhu_common.events.contracts.engagement import LevelReached, PointsAwarded
from qunzhu_common.timeutil import utcnow

_score = MemberScore.__table__  # type: ignore[attr-defined]
_daily = PointsDaily.__table__  # type: ignore[attr-defined]


async def bump_member(
    session: AsyncSession, *, community_id: str, person_id: str, points: int, effective_at: datetime | None
) -> tuple[int, int, int]:
    """Add points (maybe 0) and move `last_effective_at` forward; returns (total, level, highest_level)."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_score).values(
        community_id=community_id, person_id=person_id, total_points=points, level=1, highest_level=1,
        last_effective_at=effective_at,
    )
    set_: dict = {"total_points": _score.c.total_points + stmt.excluded.total_points}
    if effective_at is not None:
        set_["last_effective_at"] = case(
            (_score.c.last_effective_at.is_(None), stmt.excluded.last_effective_at),
            (_score.c.last_effective_at < stmt.excluded.last_effective_at, stmt.excluded.last_effective_at),
            else_=_score.c.last_effective_at,
        )
    stmt = stmt.on_conflict_do_update(index_elements=["community_id", "person_id"], set_=set_).returning(
        _score.c.total_points, _score.c.level, _score.c.highest_level
    )
    row = (await session.execute(stmt)).one()
    return int(row[0]), int(row[1]), int(row[2])


async def write_entry(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activity: Activity,
    rule_type: str,
    version: int,
    rules: ScoringRules,
    points: int,
    reason: str,
    kind: str = "award",
    revision: int = 0,
    effective_at: datetime | None = None,
) -> None:
    """Append one ledger entry and move every figure derived from it, in the caller's transaction."""
    assert activity.day is not None
    rule = f"{rule_type}@v{version}"
    session.add(
        PointsLedger(
            community_id=activity.community_id,
            person_id=activity.person_id,
            group_id=activity.group_id,
            source_event_id=activity.source_event_id,
            activity_id=activity.id,
            rule_type=rule_type,
            rule_set_version=version,
            rule=rule,
            kind=kind,
            revision=revision,
            points=points,
            occurred_at=activity.occurred_at,
            day=activity.day,
            reason=reason,
            created_at=utcnow(),
        )
    )
    await increment(
        session,
        _daily,
        key={
            "community_id": activity.community_id,
            "day": activity.day,
            "group_id": activity.group_id,
            "person_id": activity.person_id,
        },
        add={"points": points},
    )
    total, level, highest = await bump_member(
        session, community_id=activity.community_id, person_id=activity.person_id, points=points,
        effective_at=effective_at,
    )
    await _move_level(session, ctx, activity=activity, rules=rules, total=total, level=level, highest=highest)
    if ctx.metrics is not None:
        if points > 0:  # counters only go up; reversals show in ledger_entries{kind="reversal"}
            ctx.metrics.points_awarded.labels(rule_type).inc(points)
        ctx.metrics.ledger_entries.labels(rule_type, kind).inc()
    await ctx.emit(
        session,
        type="points.awarded",
        community_id=activity.community_id,
        data=PointsAwarded(
            community_id=activity.community_id,
            person_id=activity.person_id,
            points=points,
            rule=rule,
            rule_type=rule_type,
            rule_set_version=version,
            source_event_id=activity.source_event_id,
            group_id=activity.group_id or None,
            reason=reason,
            total_points=total,
            occurred_at=activity.occurred_at,
        ),
    )


async def _move_level(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activity: Activity,
    rules: ScoringRules,
    total: int,
    level: int,
    highest: int,
) -> None:
    new_level = rules.level_for(total)
    if new_level == level:
        return
    values: dict = {"level": new_level}
    if new_level > highest:
        values["highest_level"] = new_level
    await session.execute(
        update(MemberScore)
        .where(MemberScore.community_id == activity.community_id, MemberScore.person_id == activity.person_id)
        .values(**values)
    )
    if new_level <= highest:
        return  # back to a level already reached once: no second celebration
    if ctx.metrics is not None:
        ctx.metrics.levels_reached.labels(str(new_level)).inc()
    await ctx.emit(
        session,
        type="level.reached",
        community_id=activity.community_id,
        data=LevelReached(
            community_id=activity.community_id,
            person_id=activity.person_id,
            level=new_level,
            previous_level=highest,
            total_points=total,
            threshold=rules.level_thresholds[new_level - 1],
            reached_at=activity.occurred_at,
        ),
    )
