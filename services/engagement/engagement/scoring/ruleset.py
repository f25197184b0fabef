"""Versioned rule sets: each version is in force from its `effective_from` until the next one's."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import URL, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.errors import InvalidRules
from engagement.models import RuleSetVersion
from engagement.scoring.rules import DEFAULT_RULES, ScoringRules
from qunzhu_common.timeutil import utcnow

# Rule rows never change once written, so their parsed form can be shared. The key is not the row id:
# several databases (tests, embedded replicas) can live in one process.
_PARSED: dict[tuple[str, int, str], ScoringRules] = {}


def _parse(row: RuleSetVersion) -> ScoringRules:
    key = (row.community_id, row.version, row.created_at.isoformat())
    rules = _PARSED.get(key)
    if rules is None:
        rules = ScoringRules.model_validate(row.rules)
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        _PARSED[key] = rules
    return rules


# Versions per (database, community), kept a few seconds: scoring asks for them on every event. A
# version added in this process drops the entry at once; one added by another replica is seen within
# VERSIONS_TTL_S (and replay is unaffected: each activity records the version it was scored under).
VERSIONS_TTL_S = 5.0
_VERSIONS: dict[tuple[URL, str], tuple[float, list[tuple[datetime, int, ScoringRules]]]] = {}


def _cache_key(session: AsyncSession, community_id: str) -> tuple[URL, str]:
    # The URL itself (immutable, hashable), not its text: rendering it quoted the password once per activity.
    return (session.bind.url, community_id)


async def _versions(session: AsyncSession, community_id: str) -> list[tuple[datetime, int, ScoringRules]]:
    key = _cache_key(session, community_id)
    cached = _VERSIONS.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = (
        await session.execute(
            select(RuleSetVersion).where(RuleSetVersion.community_id == community_id)
            .order_by(RuleSetVersion.effective_from.desc(), RuleSetVersion.version.desc())
        )
    ).scalars().all()
    versions = [(row.effective_from, row.version, _parse(row)) for row in rows]
    if len(_VERSIONS) > 10_000:
        _VERSIONS.clear()
    _VERSIONS[key] = (time.monotonic() + VERSIONS_TTL_S, versions)
    return versions


async def rules_at(session: AsyncSession, *, community_id: str, at: datetime) -> tuple[int, ScoringRules]:
    """The (version, rules) in force at `at`; version 0 is the built-in defaults."""
    return in_force(await versions_of(session, community_id), at)


async def versions_of(session: AsyncSession, community_id: str) -> list[tuple[datetime, int, ScoringRules]]:
    """A community's versions, newest start first (for `in_force`; a batch asks once per community)."""
    return await _versions(session, community_id)


def in_force(versions: list[tuple[datetime, int, ScoringRules]], at: datetime) -> tuple[int, ScoringRules]:
    for effective_from, version, rules in versions:
        if effective_from <= at:
            return version, rules
    return 0, DEFAULT_RULES


async def rules_of_version(session: AsyncSession, *, community_id: str, version: int) -> ScoringRules:
    if version == 0:
        return DEFAULT_RULES
    row = (
        await session.execute(
            select(RuleSetVersion).where(RuleSetVersion.community_id == community_id, RuleSetVersion.version == version)
        )
    ).scalar_one()
    return _parse(row)


async def current_rules(session: AsyncSession, *, community_id: str) -> tuple[int, ScoringRules]:
    return await rules_at(session, community_id=community_id, at=utcnow())


async def list_versions(session: AsyncSession, *, community_id: str) -> list[RuleSetVersion]:
    rows = await session.execute(
        select(RuleSetVersion).where(RuleSetVersion.community_id == community_id).order_by(RuleSetVersion.version)
    )
    return list(rows.scalars())


async def add_version(
    session: AsyncSession,
    *,
    community_id: str,
    rules: ScoringRules,
    effective_from: datetime | None,
    note: str = "",
) -> RuleSetVersion:
    """Add the next version. It may start in the past (then a recompute can apply it to history)."""
    now = utcnow()
    effective_from = effective_from or now
    latest = (
        await session.execute(
            select(func.max(RuleSetVersion.version), func.max(RuleSetVersion.effective_from)).where(
                RuleSetVersion.community_id == community_id
            )
        )
    ).one()
    if latest[1] is not None and effective_from < latest[1]:
        raise InvalidRules(
            "effective_from must not precede the latest version's",
            errors=[{"loc": ["body", "effective_from"], "msg": f"must be ≥ {latest[1].isoformat()}"}],
        )
    row = RuleSetVersion(
        community_id=community_id,
        version=(latest[0] or 0) + 1,
        effective_from=effective_from,
        rules=rules.model_dump(mode="json"),
        note=note,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    _VERSIONS.pop(_cache_key(session, community_id), None)
    return row
