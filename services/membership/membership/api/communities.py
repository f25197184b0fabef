"""Communities: create (optionally from a template), read, edit, settings, ritual, rules, dissolve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from membership import permissions
from membership.deps import ActorDep, CtxDep, PersonDep, SessionDep
from membership.errors import PermissionDenied
from membership.models import (
    CommunitiesPublic,
    CommunityCreate,
    CommunityPublic,
    CommunitySettingsPublic,
    CommunitySettingsUpdate,
    CommunityUpdate,
    RitualUpdate,
    RulesCreate,
    RulesPublic,
)
from membership.service import communities as svc
from membership.service.access import authorize, load_community
from membership.service.arrivals import effective_chat_join_policy
from membership.service.communities import BILLING_SETTINGS
from membership.service.expiry import reschedule_community
from membership.service.ritual import release_pending
from membership.templates import template_document

router = APIRouter(tags=["communities"])


def _public(community) -> CommunityPublic:  # type: ignore[no-untyped-def]
    return CommunityPublic.model_validate(community, from_attributes=True)


@router.post("/communities", status_code=status.HTTP_201_CREATED, response_model=CommunityPublic)
async def create_community(body: CommunityCreate, session: SessionDep, ctx: CtxDep,
                           actor: ActorDep) -> CommunityPublic:
    """Create a community; the acting person (`X-Actor-Id`) becomes its owner.

    Emits `community.created` (and `community.template_applied` with a `template`). `owner_id` must be
    absent or equal to the acting person — except for the platform operator (`X-Actor-Id:
    platform-operator`), who creates communities for the `owner_id` given. Nobody creates a community
    anonymously (a caller reaching this port directly could otherwise name any owner).
    """
    if actor.is_platform:
        if body.owner_id is None:
            raise PermissionDenied("the platform operator creates communities for an owner: send owner_id")
        owner = body.owner_id
    else:
        if actor.is_service or actor.is_api_key:
            raise PermissionDenied("a person creates communities, not a service or an API key")
        if body.owner_id is not None and body.owner_id != actor.id:
            raise PermissionDenied("owner_id must be the acting person (X-Actor-Id)")
        owner = actor.id
    community = await svc.create_community(session, ctx=ctx, data=body, owner_id=owner)
    return _public(community)


@router.get("/communities", response_model=CommunitiesPublic)
async def list_communities(
    session: SessionDep,
    owner_id: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CommunitiesPublic:
    """Communities, oldest first, optionally only those of one owner (public: positioning and entry policy)."""
    rows, count = await svc.list_communities(session, owner_id=owner_id, offset=offset, limit=limit)
    return CommunitiesPublic(data=[_public(c) for c in rows], count=count)


@router.get("/communities/{community_id}", response_model=CommunityPublic)
async def get_community(community_id: str, session: SessionDep) -> CommunityPublic:
    """One community by id: what anyone sees before joining (name, positioning, entry policy, rules version)."""
    return _public(await load_community(session, community_id))


@router.patch("/communities/{community_id}", response_model=CommunityPublic)
async def update_community(community_id: str, body: CommunityUpdate, session: SessionDep, ctx: CtxDep,
                           actor: PersonDep) -> CommunityPublic:
    """Edit the public face (`community.update`: owner, admins). Emits `community.updated`.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="community.update")
    await svc.update_community(session, ctx=ctx, community=community, data=body)
    if body.timezone is not None:  # reminders go out at local times
        await reschedule_community(session, ctx, community=community)
    return _public(community)


@router.delete("/communities/{community_id}", response_model=CommunityPublic)
async def dissolve_community(community_id: str, session: SessionDep, ctx: CtxDep, actor: PersonDep) -> CommunityPublic:
    """Dissolve the community (`community.dissolve`: the owner only). Later payments are refunded.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True)
    await authorize(session, community=community, actor=actor, action="community.dissolve")
    return _public(await svc.dissolve(session, ctx=ctx, community=community))


def _settings(community) -> CommunitySettingsPublic:  # type: ignore[no-untyped-def]
    return CommunitySettingsPublic.model_validate(
        {**community.model_dump(), "community_id": community.id,
         "chat_join_policy": effective_chat_join_policy(community)}  # unset shows the default it stands for
    )


@router.get("/communities/{community_id}/settings", response_model=CommunitySettingsPublic)
async def get_settings(community_id: str, session: SessionDep, actor: ActorDep) -> CommunitySettingsPublic:
    """Paywall, expiry, privacy, policy and ritual settings (`community.update`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="community.update")
    return _settings(community)


@router.patch("/communities/{community_id}/settings", response_model=CommunitySettingsPublic)
async def update_settings(community_id: str, body: CommunitySettingsUpdate, session: SessionDep, ctx: CtxDep,
                          actor: PersonDep) -> CommunitySettingsPublic:
    """Change settings (`community.update`; money-related ones — referral commission, tiers, grace, term
    anniversary — need `community.billing`, the owner's). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True, allow_dissolved=False)
    sent = body.model_dump(exclude_unset=True)
    action = "community.billing" if BILLING_SETTINGS & set(sent) else "community.update"
    await authorize(session, community=community, actor=actor, action=action)
    await svc.update_settings(session, ctx=ctx, community=community, data=body)
    if {"reminder_days", "reminder_local_time", "grace_period_days"} & set(sent):
        await reschedule_community(session, ctx, community=community)
    return _settings(community)


@router.get("/communities/{community_id}/ritual", response_model=CommunitySettingsPublic)
async def get_ritual(community_id: str, session: SessionDep) -> CommunitySettingsPublic:
    """The joining ritual everyone must know before joining: intro fields and nickname pattern (public)."""
    return _settings(await load_community(session, community_id))


@router.patch("/communities/{community_id}/ritual", response_model=CommunitySettingsPublic)
async def update_ritual(community_id: str, body: RitualUpdate, session: SessionDep, ctx: CtxDep,
                        actor: PersonDep) -> CommunitySettingsPublic:
    """Edit the ritual (`community.update`); switching it off activates everyone waiting for it.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="community.update")
    await svc.update_ritual(session, ctx=ctx, community=community, data=body)
    if body.ritual_enabled is False:
        await release_pending(session, ctx, community=community)
    return _settings(community)


@router.get("/communities/{community_id}/rules", response_model=RulesPublic)
async def get_rules(community_id: str, session: SessionDep) -> RulesPublic:
    """The current rules (群规), which a person accepts by version when joining (public)."""
    community = await load_community(session, community_id)
    return RulesPublic.model_validate(await svc.current_rules(session, community=community), from_attributes=True)


@router.post("/communities/{community_id}/rules", status_code=201, response_model=RulesPublic)
async def publish_rules(community_id: str, body: RulesCreate, session: SessionDep, ctx: CtxDep,
                        actor: PersonDep) -> RulesPublic:
    """Publish a new rules version (`community.update`). Emits `rules.published`. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="community.update")
    rules = await svc.publish_rules(session, ctx=ctx, community=community, text=body.text, actor_id=actor.recorded_as)
    return RulesPublic.model_validate(rules, from_attributes=True)


@router.get("/templates", tags=["catalog"])
async def list_templates() -> list[dict]:
    """Community templates: what each presets (entry policy, rules, ritual, scoring rules, content rhythm)."""
    return template_document()


@router.get("/permissions", tags=["catalog"])
async def permission_matrix() -> dict:
    """The permission matrix (roles × actions, with settings-dependent rights and standing rules).

    The gateway authorizes with it together with `GET /communities/{id}/members/{member_id}`
    (role, status, in_good_standing, and the member's allowed actions already resolved).
    """
    return permissions.matrix_document()
