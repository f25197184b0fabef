"""Ledger writes and the running figures kept in the same transaction (totals, per-day, levels).

Reads never sum the ledger: leaderboards use `member_score` (all time) and `points_daily` (windows).
A scored batch is written with a handful of multi-row statements (`write_awards`); recompute's
reversals go one entry at a time (`write_entry`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, case, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.dbutil import increment
from engagement.models import Activity, MemberScore, PointsDaily, PointsLedger
from engagement.scoring.rules import ScoringRules
from qunzhu_common.db.bulk import bulk_insert
from qunzhu_common.events.contracts.engagement import LevelReached, PointsAwarded
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.outbox import count_after_commit, run_after_commit
from qunzhu_common.timeutil import utcnow

_score = MemberScore.__table__  # type: ignore[attr-defined]
_daily = PointsDaily.__table__  # type: ignore[attr-defined]
_ledger = PointsLedger.__table__  # type: ignore[attr-defined]

MemberDay = tuple[str, str, date]  # (community_id, person_id, local day)


@dataclass
class Award:
    """One scored activity's outcome: a ledger entry when `points` > 0, in any case a member touch."""

    activity: Activity
    key: MemberDay
    rule_type: str
    version: int
    rules: ScoringRules
    points: int
    reason: str
    effective_at: datetime | None
    correlation_id: str | None = None  # of the event that brought the activity


def _upsert(session: AsyncSession, table):  # noqa: ANN001, ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(table)


async def write_awards(session: AsyncSession, ctx: EngagementContext, *, awards: list[Award]) -> None:
    """Write a scored batch: ledger rows, per-day figures, member totals and levels, their events.

    Per-day figures and member totals are summed per row first, so each row is written once; the
    `points.awarded` events still carry the running total after each entry.
    """
    if not awards:
        return
    entries = [a for a in awards if a.points]
    now = utcnow()
    if entries:
        await bulk_insert(session, _ledger, fallback=insert(_ledger), rows=[
            dict(community_id=a.activity.community_id, person_id=a.activity.person_id, group_id=a.activity.group_id,
                 source_event_id=a.activity.source_event_id, activity_id=a.activity.id, rule_type=a.rule_type,
                 rule_set_version=a.version, rule=f"{a.rule_type}@v{a.version}", kind="award",
                 revision=a.activity.revision, points=a.points, occurred_at=a.activity.occurred_at, day=a.key[2],
                 reason=a.reason, created_at=now)
            for a in entries
        ])
        daily: Counter[tuple[str, date, str, str]] = Counter()
        for a in entries:
            daily[(a.activity.community_id, a.key[2], a.activity.group_id, a.activity.person_id)] += a.points
        stmt = _upsert(session, _daily)
        await bulk_insert(
            session, _daily,
            [dict(community_id=c, day=d, group_id=g, person_id=p, points=n) for (c, d, g, p), n in daily.items()],
            fallback=stmt.on_conflict_do_update(
                index_elements=["community_id", "day", "group_id", "person_id"],
                set_={"points": _daily.c.points + stmt.excluded.points},
            ),
            pg_tail="ON CONFLICT (community_id, day, group_id, person_id) "
                    "DO UPDATE SET points = points_daily.points + EXCLUDED.points",
        )
    totals = await _bump_members(session, awards)

    # Events and levels, in batch order; running totals counted back from each member's new total.
    gained: Counter[tuple[str, str]] = Counter()
    for a in entries:
        gained[(a.activity.community_id, a.activity.person_id)] += a.points
    running = {member: total - gained[member] for member, (total, _, _) in totals.items()}
    last_of: dict[tuple[str, str], Award] = {}
    envelopes: list[Envelope] = []
    for a in awards:
        member = (a.activity.community_id, a.activity.person_id)
        last_of[member] = a
        if not a.points:
            continue
        running[member] += a.points
        if ctx.live:
            envelopes.append(_envelope(ctx, "points.awarded", a.activity.community_id, a.correlation_id, PointsAwarded(
                community_id=a.activity.community_id, person_id=a.activity.person_id, points=a.points,
                rule=f"{a.rule_type}@v{a.version}", rule_type=a.rule_type, rule_set_version=a.version,
                source_event_id=a.activity.source_event_id, group_id=a.activity.group_id or None, reason=a.reason,
                total_points=running[member], occurred_at=a.activity.occurred_at,
            )))
    moves, reached = [], []
    for member, (total, level, highest) in totals.items():
        last = last_of[member]
        new_level = last.rules.level_for(total)
        if new_level == level:
            continue
        moves.append(dict(c=member[0], p=member[1], level=new_level, highest=max(highest, new_level)))
        if new_level > highest:  # back to a level already reached once: no second celebration
            reached.append(str(new_level))
            if ctx.live:
                envelopes.append(_envelope(ctx, "level.reached", member[0], last.correlation_id, LevelReached(
                    community_id=member[0], person_id=member[1], level=new_level, previous_level=highest,
                    total_points=total, threshold=last.rules.level_thresholds[new_level - 1],
                    reached_at=last.activity.occurred_at,
                )))
    if moves:
        await session.execute(
            update(_score)
            .where(_score.c.community_id == bindparam("c"), _score.c.person_id == bindparam("p"))
            .values(level=bindparam("level"), highest_level=bindparam("highest")),
            moves,
        )
    await ctx.stage(session, envelopes)
    if ctx.metrics is not None:
        run_after_commit(session, _count(ctx, awards, reached))


def _envelope(ctx: EngagementContext, type_: str, community_id: str, correlation_id: str | None, data) -> Envelope:  # noqa: ANN001, E501
    assert ctx.outbox is not None
    return new_envelope(type=type_, data=data, source=ctx.outbox.source, community_id=community_id,
                        correlation_id=correlation_id)


async def _bump_members(session: AsyncSession, awards: list[Award]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Add each member's points of the batch and move `last_effective_at`; returns (total, level, highest)."""
    points: Counter[tuple[str, str]] = Counter()
    effective: dict[tuple[str, str], datetime | None] = {}
    for a in awards:
        member = (a.activity.community_id, a.activity.person_id)
        points[member] += a.points
        seen = effective.get(member)
        if a.effective_at is not None and (seen is None or a.effective_at > seen):
            effective[member] = a.effective_at
        else:
            effective.setdefault(member, None)
    stmt = _upsert(session, _score)
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "person_id"],
        set_={
            "total_points": _score.c.total_points + stmt.excluded.total_points,
            # NULL (nothing effective in the batch) never moves it; a later time does.
            "last_effective_at": case(
                (stmt.excluded.last_effective_at.is_(None), _score.c.last_effective_at),
                (_score.c.last_effective_at.is_(None), stmt.excluded.last_effective_at),
                (_score.c.last_effective_at < stmt.excluded.last_effective_at, stmt.excluded.last_effective_at),
                else_=_score.c.last_effective_at,
            ),
        },
    ).returning(_score.c.community_id, _score.c.person_id, _score.c.total_points, _score.c.level,
                _score.c.highest_level)
    rows = await bulk_insert(
        session, _score,
        [dict(community_id=c, person_id=p, total_points=n, level=1, highest_level=1,
              last_effective_at=effective[(c, p)]) for (c, p), n in points.items()],
        fallback=stmt, pg_tail=_MEMBER_SCORE_TAIL,
        returning=["community_id", "person_id", "total_points", "level", "highest_level"],
    )
    return {(c, p): (int(t), int(lv), int(h)) for c, p, t, lv, h in rows}


# The PostgreSQL form of `_bump_members`' conflict clause (bulk_insert); keep the two in step.
_MEMBER_SCORE_TAIL = """ON CONFLICT (community_id, person_id) DO UPDATE SET
    total_points = member_score.total_points + EXCLUDED.total_points,
    last_effective_at = CASE
        WHEN EXCLUDED.last_effective_at IS NULL THEN member_score.last_effective_at
        WHEN member_score.last_effective_at IS NULL THEN EXCLUDED.last_effective_at
        WHEN member_score.last_effective_at < EXCLUDED.last_effective_at THEN EXCLUDED.last_effective_at
        ELSE member_score.last_effective_at END"""


def _count(ctx: EngagementContext, awards: list[Award], reached: list[str]):  # noqa: ANN202 - an after-commit hook
    """Metrics once the batch is committed: a batch that rolls back and is retried counts once."""

    # Summed per label first: a label lookup per activity cost more than scoring it.
    scored = Counter(a.activity.rule_type or "none" for a in awards)
    points: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    for a in awards:
        if a.points:
            points[a.rule_type] += a.points
            entries[a.rule_type] += 1

    def count() -> None:
        metrics = ctx.metrics
        assert metrics is not None
        for verdict, n in scored.items():
            metrics.activities_scored.labels(verdict).inc(n)
        for rule_type, n in points.items():
            metrics.points_awarded.labels(rule_type).inc(n)
            metrics.ledger_entries.labels(rule_type, "award").inc(entries[rule_type])
        for level in reached:
            metrics.levels_reached.labels(level).inc()

    return count


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
            count_after_commit(session, ctx.metrics.points_awarded.labels(rule_type), points)
        count_after_commit(session, ctx.metrics.ledger_entries.labels(rule_type, kind))
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
        count_after_commit(session, ctx.metrics.levels_reached.labels(str(new_level)))
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
