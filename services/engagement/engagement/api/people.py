"""Lurkers, removal recommendations, key people, group health and AB-promotion candidates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from sqlalchemy import select

from engagement.api.deps import ContextDep, StaffOf
from engagement.errors import ThingNotFound
from engagement.jobs.ab import ab_candidates, core_groups
from engagement.jobs.health import community_health
from engagement.jobs.runner import run_job
from engagement.leaderboard.service import community
from engagement.models import KeyPeopleSnapshot, LurkerFlag, RemovalRecommendation
from engagement.scoring.ruleset import rules_at
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}", tags=["people and groups"])

AsOf = Annotated[AwareDatetime | None, Query(description="Evaluate as of this time (default now).")]


@router.post("/jobs/{name}")
async def run(
    community_id: str, name: Literal["lurkers", "elimination", "key_people", "group_health"], caller: StaffOf,
    session: SessionDep, ctx: ContextDep, as_of: AsOf = None,
) -> dict[str, Any]:
    """Run one periodic job now for this community (they also run on a schedule)."""
    return {"job": name, "result": await run_job(session, ctx, name=name, community_id=community_id,
                                                 now=as_of or utcnow())}


@router.get("/lurkers")
async def lurkers(community_id: str, caller: StaffOf, session: SessionDep) -> list[dict[str, Any]]:
    """Members flagged for no effective activity, newest first (owner/admin)."""
    rows = await session.execute(select(LurkerFlag).where(LurkerFlag.community_id == community_id)
                                 .order_by(LurkerFlag.flagged_at.desc()))
    return [r.model_dump(exclude={"id"}) for r in rows.scalars()]


@router.get("/removal-recommendations")
async def removal_recommendations(community_id: str, caller: StaffOf, session: SessionDep) -> list[dict[str, Any]]:
    """Removal recommendations with their evidence, newest first (owner/admin)."""
    rows = await session.execute(select(RemovalRecommendation).where(RemovalRecommendation.community_id == community_id)
                                 .order_by(RemovalRecommendation.recommended_at.desc()))
    return [r.model_dump(exclude={"id"}) for r in rows.scalars()]


@router.get("/key-people")
async def key_people(community_id: str, caller: StaffOf, session: SessionDep) -> dict[str, Any]:
    """The latest opinion leaders and connectors, with scores and reasons (owner/admin)."""
    row = (await session.execute(select(KeyPeopleSnapshot).where(KeyPeopleSnapshot.community_id == community_id)
                                 .order_by(KeyPeopleSnapshot.computed_at.desc()).limit(1))).scalar_one_or_none()
    if row is None:
        raise ThingNotFound(f"key people of {community_id} were not computed yet")
    return {"window_start": row.window_start, "window_end": row.window_end, "computed_at": row.computed_at,
            **row.result}


@router.get("/groups/health")
async def groups_health(community_id: str, caller: StaffOf, session: SessionDep, as_of: AsOf = None
                        ) -> list[dict[str, Any]]:
    """Per chat group (owner/admin): daily active ratio, effective share, joins/leaves, KOL/active/reply-1/silent,
    dead-group risk."""
    c = await community(session, community_id)
    now: datetime = as_of or utcnow()
    _, rules = await rules_at(session, community_id=community_id, at=now)
    return await community_health(session, community=c, rules=rules, now=now)


@router.get("/groups/{group_id}/ab-candidates")
async def ab(
    community_id: str, group_id: str, caller: StaffOf, session: SessionDep,
    core_group_id: Annotated[str | None, Query(
        max_length=200, description="Core group (default: the community's B groups from membership).",
    )] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10, as_of: AsOf = None,
) -> list[dict[str, Any]]:
    """Candidates from this (A) group for the core (B) group (owner/admin): interaction, points and homework quality.

    Members already in a core group are left out; 422 when the community has no B group and none is given.
    """
    c = await community(session, community_id)
    core = await core_groups(session, community_id=community_id, group_id=group_id, core_group_id=core_group_id)
    return await ab_candidates(session, community=c, group_id=group_id, core_group_ids=core,
                               now=as_of or utcnow(), limit=limit)
