"""Communities: creation (optionally from a template), public face, settings, rules, dissolution."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.errors import BadInput, InvalidState, ResourceNotFound
from membership.models import (
    Community,
    CommunityCreate,
    CommunityRules,
    CommunitySettingsUpdate,
    CommunityUpdate,
    Membership,
    RitualUpdate,
)
from membership.templates import TEMPLATES
from qunzhu_common.events.contracts.membership import (
    CommunityCreated,
    CommunityTemplateApplied,
    CommunityUpdated,
    RulesPublished,
)


async def create_community(
    session: AsyncSession, *, ctx: MembershipContext, data: CommunityCreate, owner_id: str
) -> Community:
    """Create a community owned by `owner_id`, with the owner's membership and the first rules version.

    Emits `community.created` (and `community.template_applied` when made from a template).
    """
    now = ctx.now()
    template = TEMPLATES[data.template] if data.template else None
    policies = data.entry_policies or (list(template.entry_policies) if template else ["free"])
    community = Community(
        name=data.name, positioning=data.positioning, timezone=data.timezone, owner_id=owner_id,
        entry_policies=list(policies), template=data.template, created_at=now, updated_at=now,
    )
    if template is not None:
        community.ritual_enabled = template.ritual_enabled
        community.intro_fields = list(template.intro_fields)
        community.nickname_pattern = template.nickname_pattern
        for key, value in template.settings.items():
            setattr(community, key, value)
    session.add(community)
    await session.flush()
    session.add(
        Membership(
            community_id=community.id, member_id=owner_id, role="owner", status="active", comp=True,
            joined_at=now, created_at=now, changed_at=now,
        )
    )
    rules_text = data.rules if data.rules is not None else (template.rules if template else None)
    if rules_text:
        community.rules_version = 1
        session.add(CommunityRules(community_id=community.id, version=1, text=rules_text, published_by=owner_id,
                                   published_at=now))
    await session.flush()
    await ctx.outbox.emit(
        session, type="community.created", community_id=community.id,
        data=CommunityCreated(
            community_id=community.id, name=community.name, positioning=community.positioning,
            owner_id=community.owner_id, timezone=community.timezone, entry_policies=community.entry_policies,
            created_at=community.created_at, template=data.template, rules_version=community.rules_version,
            chat_join_policy=_chat_join_policy(community),  # type: ignore[arg-type]
        ),
    )
    if template is not None:
        await ctx.outbox.emit(
            session, type="community.template_applied", community_id=community.id,
            data=CommunityTemplateApplied(
                community_id=community.id, template=template.key, scoring_rules=template.scoring_rules,
                content_rhythm=template.content_rhythm, applied_at=now,
            ),
        )
    return community


async def list_communities(
    session: AsyncSession, *, owner_id: str | None, offset: int, limit: int
) -> tuple[list[Community], int]:
    query = select(Community)
    count_query = select(func.count()).select_from(Community)
    if owner_id is not None:
        query = query.where(Community.owner_id == owner_id)
        count_query = count_query.where(Community.owner_id == owner_id)
    rows = await session.execute(query.order_by(Community.created_at, Community.id).offset(offset).limit(limit))
    count = await session.scalar(count_query)
    return list(rows.scalars().all()), int(count or 0)


def _chat_join_policy(community: Community) -> str:
    """The policy in force, carried in community events so the gateway's door (QQ join requests) follows it."""
    from membership.service.arrivals import effective_chat_join_policy

    return effective_chat_join_policy(community)


async def emit_updated(session: AsyncSession, ctx: MembershipContext, community: Community, type_: str) -> None:
    community.updated_at = ctx.now()
    await session.flush()
    await ctx.outbox.emit(
        session, type=type_, community_id=community.id,
        data=CommunityUpdated(
            community_id=community.id, name=community.name, positioning=community.positioning,
            owner_id=community.owner_id, timezone=community.timezone, entry_policies=community.entry_policies,
            status=community.status, rules_version=community.rules_version,  # type: ignore[arg-type]
            reading_limit_days=community.reading_limit_days, member_list_visible=community.member_list_visible,
            contact_visible=community.contact_visible, ritual_enabled=community.ritual_enabled,
            chat_join_policy=_chat_join_policy(community),  # type: ignore[arg-type]
            changed_at=community.updated_at,
        ),
    )


async def update_community(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, data: CommunityUpdate
) -> Community:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for key, value in changes.items():
        setattr(community, key, list(value) if key == "entry_policies" else value)
    await emit_updated(session, ctx, community, "community.updated")
    return community


BILLING_SETTINGS = frozenset({"referral_commission_bps", "term_anniversary", "tiers", "grace_period_days"})


async def update_settings(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, data: CommunitySettingsUpdate
) -> Community:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if changes.pop("reading_limit_off", False):
        community.reading_limit_days = None
    if "guest_limit" in changes and changes["guest_limit"] < community.guest_count:
        raise InvalidState(
            f"the community already has {community.guest_count} guests; demote some before lowering the limit"
        )
    if "tiers" in changes:
        from membership.models import Plan

        used = set((await session.execute(
            select(Plan.tier).where(Plan.community_id == community.id).distinct()
        )).scalars().all())
        missing = used - set(changes["tiers"])
        if missing:
            raise BadInput(f"plans use tiers that would disappear: {sorted(missing)}")
    for key, value in changes.items():
        setattr(community, key, value)
    await emit_updated(session, ctx, community, "community.updated")
    return community


async def update_ritual(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, data: RitualUpdate
) -> Community:
    for key, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(community, key, value)
    await emit_updated(session, ctx, community, "community.updated")
    return community


async def publish_rules(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, text: str, actor_id: str
) -> CommunityRules:
    """A new rules version; members joining from now on must accept it (members already in keep theirs)."""
    now = ctx.now()
    community.rules_version += 1
    rules = CommunityRules(community_id=community.id, version=community.rules_version, text=text,
                           published_by=actor_id, published_at=now)
    session.add(rules)
    await session.flush()
    await ctx.outbox.emit(
        session, type="rules.published", community_id=community.id,
        data=RulesPublished(community_id=community.id, version=rules.version, text=text, published_by=actor_id,
                            published_at=now),
    )
    return rules


async def current_rules(session: AsyncSession, *, community: Community) -> CommunityRules:
    if community.rules_version == 0:
        raise ResourceNotFound("this community has no rules yet")
    rules = await session.get(CommunityRules, (community.id, community.rules_version))
    assert rules is not None
    return rules


async def dissolve(session: AsyncSession, *, ctx: MembershipContext, community: Community) -> Community:
    """The owner dissolves the community: no new members, no payments applied (they are refunded)."""
    if community.status == "dissolved":
        return community
    community.status = "dissolved"
    await emit_updated(session, ctx, community, "community.dissolved")
    return community
