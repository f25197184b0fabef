"""Chat groups (capacity, A/B role, paid) and plans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from membership.deps import ActorDep, CtxDep, PersonDep, SessionDep
from membership.models import GroupCreate, GroupPublic, GroupUpdate, PlanCreate, PlanPublic, PlanUpdate
from membership.service import groups as group_svc
from membership.service import plans as plan_svc
from membership.service.access import authorize, load_community

router = APIRouter(tags=["groups and plans"])


def _group(g) -> GroupPublic:  # type: ignore[no-untyped-def]
    return GroupPublic.model_validate(g, from_attributes=True)


@router.post("/communities/{community_id}/groups", status_code=status.HTTP_201_CREATED, response_model=GroupPublic)
async def register_group(community_id: str, body: GroupCreate, session: SessionDep, ctx: CtxDep,
                         actor: PersonDep) -> GroupPublic:
    """Register a chat group (`group.manage`): platform, external id, capacity (default 500), role A (open) or
    B (core), paid (default: whether entry is paid). Members waiting for a seat get one. Emits `group.registered`.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="group.manage")
    return _group(await group_svc.register_group(session, ctx=ctx, community=community, data=body))


@router.get("/communities/{community_id}/groups", response_model=list[GroupPublic])
async def list_groups(community_id: str, session: SessionDep, actor: ActorDep) -> list[GroupPublic]:
    """The community's chat groups with their seat counts (`group.manage`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="group.manage")
    return [_group(g) for g in await group_svc.list_groups(session, community_id=community.id)]


@router.patch("/communities/{community_id}/groups/{group_id}", response_model=GroupPublic)
async def update_group(community_id: str, group_id: str, body: GroupUpdate, session: SessionDep, ctx: CtxDep,
                       actor: PersonDep) -> GroupPublic:
    """Change capacity (never below the seats taken), role, paid flag, order (`group.manage`).
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="group.manage")
    group = await group_svc.get_group(session, community_id=community.id, group_id=group_id)
    return _group(await group_svc.update_group(session, ctx=ctx, group=group, data=body))


@router.post("/communities/{community_id}/plans", status_code=status.HTTP_201_CREATED, response_model=PlanPublic)
async def create_plan(community_id: str, body: PlanCreate, session: SessionDep, ctx: CtxDep,
                      actor: PersonDep) -> PlanPublic:
    """Create a plan (`community.billing`: the owner): price in fen, term type, trial, renewal price,
    refund window (default 72 h), tier. Emits `plan.created`. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="community.billing")
    return PlanPublic.model_validate(await plan_svc.create_plan(session, ctx=ctx, community=community, data=body),
                                     from_attributes=True)


@router.get("/communities/{community_id}/plans", response_model=list[PlanPublic])
async def list_plans(community_id: str, session: SessionDep,
                     include_inactive: Annotated[bool, Query()] = False) -> list[PlanPublic]:
    """Active plans, cheapest first (public: people see prices before joining)."""
    community = await load_community(session, community_id)
    rows = await plan_svc.list_plans(session, community_id=community.id, include_inactive=include_inactive)
    return [PlanPublic.model_validate(p, from_attributes=True) for p in rows]


@router.patch("/communities/{community_id}/plans/{plan_id}", response_model=PlanPublic)
async def update_plan(community_id: str, plan_id: str, body: PlanUpdate, session: SessionDep, ctx: CtxDep,
                      actor: PersonDep) -> PlanPublic:
    """Edit a plan (`community.billing`); applies to payments from now on. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="community.billing")
    plan = await plan_svc.get_plan(session, community_id=community.id, plan_id=plan_id)
    return PlanPublic.model_validate(await plan_svc.update_plan(session, ctx=ctx, plan=plan, data=body),
                                     from_attributes=True)

