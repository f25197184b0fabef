"""Runs the periodic jobs: per community, in its own transaction; plus the members-by-level gauge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.jobs.health import flag_dead_groups
from engagement.jobs.keypeople import compute_key_people
from engagement.jobs.members import flag_lurkers, recommend_eliminations
from engagement.leaderboard.service import community as get_community
from engagement.metrics import LEVELS
from engagement.models import CommunityCopy, MemberScore
from engagement.scoring.ruleset import rules_at
from qunzhu_common.db.writegate import background_priority
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)

JOBS = ("lurkers", "elimination", "key_people", "group_health")


async def run_job(
    session: AsyncSession, ctx: EngagementContext, *, name: str, community_id: str, now: datetime
) -> Any:
    community = await get_community(session, community_id)
    _, rules = await rules_at(session, community_id=community_id, at=now)
    if name == "lurkers":
        return [f.person_id for f in await flag_lurkers(session, ctx, community=community, rules=rules, now=now)]
    if name == "elimination":
        return await recommend_eliminations(session, ctx, community=community, rules=rules, now=now)
    if name == "key_people":
        return (await compute_key_people(session, ctx, community=community, rules=rules, now=now)).result
    if name == "group_health":
        return await flag_dead_groups(session, ctx, community=community, rules=rules, now=now)
    raise ValueError(name)


async def update_level_gauge(session: AsyncSession, ctx: EngagementContext) -> None:
    if ctx.metrics is None:
        return
    rows = await session.execute(select(MemberScore.level, func.count()).group_by(MemberScore.level))
    counts = {str(level): count for level, count in rows}
    # A level nobody holds any more reads 0, not its last count.
    for level in sorted(set(LEVELS) | set(counts)):
        ctx.metrics.members_by_level.labels(level).set(counts.get(level, 0))


async def run_all(app: FastAPI) -> None:
    runtime, ctx = app.state.runtime, app.state.engagement
    async with runtime.session_maker() as session:
        communities = list((await session.execute(select(CommunityCopy.id))).scalars())
    for community_id in communities:
        for name in JOBS:
            try:
                async with runtime.session_maker() as session, session.begin():
                    await run_job(session, ctx, name=name, community_id=community_id, now=utcnow())
            except Exception:  # one community's failure must not stop the others
                log.exception("engagement job %s failed for %s", name, community_id)
    async with runtime.session_maker() as session:
        await update_level_gauge(session, ctx)


def scheduler(interval_s: float):  # noqa: ANN201 - a lifespan hook factory
    """Lifespan hook: run every job every `interval_s` seconds (0 disables; one replica should run it)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        if interval_s <= 0:
            yield
            return

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await run_all(app)
                except Exception:
                    log.exception("engagement jobs failed")

        with background_priority():  # its transactions queue behind requests for SQLite's writer (#19)
            task = asyncio.create_task(loop(), name="engagement-jobs")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return hook
