"""membership.events.v1: which communities exist, who is a member, with which role, since when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.errors import InvalidRules
from engagement.locks import lock_member
from engagement.models import CommunityCopy, GroupCopy, MemberCopy
from engagement.scoring.engine import score_pending
from engagement.scoring.rules import ScoringRules
from engagement.scoring.ruleset import add_version
from qunzhu_common.events.contracts.membership import (
    CommunityCreated,
    CommunityTemplateApplied,
    CommunityUpdated,
    GroupChanged,
    MemberChanged,
)
from qunzhu_common.inbox import Event
from qunzhu_common.timeutil import utcnow

# Membership's template presets name actions; these are the rule types they set.
PRESET_RULES = {
    "checkin": "checkin", "homework": "homework_submitted", "message": "effective_message",
    "link": "share_with_intro", "question": "question_asked", "reaction": "reaction_received",
    "red_packet": "red_packet",
}


async def on_community_created(session: AsyncSession, event: Event[CommunityCreated], ctx: EngagementContext) -> None:
    # A plain insert on purpose: a second application of the event would violate the primary key.
    # The inbox, not the handler, makes redelivery harmless.
    data = event.data
    await lock_member(session, community_id=data.community_id, person_id=data.owner_id)
    session.add(
        CommunityCopy(
            id=data.community_id,
            name=data.name,
            positioning=data.positioning,
            timezone=data.timezone,
            owner_id=data.owner_id,
            created_at=data.created_at,
            synced_at=utcnow(),
        )
    )
    await _project_owner(session, community_id=data.community_id, owner_id=data.owner_id, status="active",
                         changed_at=data.created_at)
    await session.flush()
    await score_pending(session, ctx, community_id=data.community_id, person_id=data.owner_id)


async def _project_owner(
    session: AsyncSession, *, community_id: str, owner_id: str, status: str, changed_at: datetime
) -> bool:
    """The owner named by a community event holds the owner role (authorization reads it): the newest
    `changed_at` wins, so a member.* event about the owner that came first or comes later is respected.
    True when the owner was not known before."""
    member = await session.get(MemberCopy, (community_id, owner_id))
    if member is None:
        session.add(MemberCopy(community_id=community_id, person_id=owner_id, role="owner", status=status,
                               joined_at=changed_at, changed_at=changed_at))
        return True
    if changed_at >= member.changed_at:  # an older state arriving late must not overwrite a newer one
        member.role, member.status, member.changed_at = "owner", status, changed_at
    return False


async def on_community_changed(session: AsyncSession, event: Event[CommunityUpdated], ctx: EngagementContext
                               ) -> None:
    """community.updated / community.dissolved carry the whole community, owner included: a new owner
    holds the owner role, and a dissolved community's owner role lapses."""
    data = event.data
    await lock_member(session, community_id=data.community_id, person_id=data.owner_id)
    new = await _project_owner(session, community_id=data.community_id, owner_id=data.owner_id,
                               status="active" if data.status == "active" else "dissolved",
                               changed_at=data.changed_at)
    if new:  # what the new owner did before engagement knew them is scored now
        await session.flush()
        await score_pending(session, ctx, community_id=data.community_id, person_id=data.owner_id)


async def on_member_changed(session: AsyncSession, event: Event[MemberChanged], ctx: EngagementContext) -> None:
    data = event.data
    await lock_member(session, community_id=data.community_id, person_id=data.member_id)
    member = await session.get(MemberCopy, (data.community_id, data.member_id))
    if member is None:
        member = MemberCopy(
            community_id=data.community_id, person_id=data.member_id, role=data.role, status=data.status,
            display_name=data.display_name, joined_at=data.joined_at or data.changed_at, changed_at=data.changed_at,
        )
        session.add(member)
        await session.flush()
        await score_pending(session, ctx, community_id=data.community_id, person_id=data.member_id)
        return
    if data.changed_at < member.changed_at:
        return  # an older state arriving late must not overwrite a newer one
    member.role, member.status, member.changed_at = data.role, data.status, data.changed_at
    member.display_name = data.display_name or member.display_name
    if data.joined_at is not None:
        member.joined_at = data.joined_at


async def on_template_applied(
    session: AsyncSession, event: Event[CommunityTemplateApplied], ctx: EngagementContext
) -> None:
    """A community made from a template starts with the template's scoring presets as rules v1."""
    data = event.data
    points, caps = {}, {}
    for preset in data.scoring_rules:
        rule_type = PRESET_RULES.get(preset.action)
        if rule_type is None:
            continue  # e.g. "intro", "reply": no rule of that kind here
        points[rule_type] = preset.points
        if preset.daily_cap is not None:
            caps[rule_type] = preset.daily_cap
    rules = ScoringRules(points=points, daily_caps={**ScoringRules().daily_caps, **caps})
    try:
        await add_version(session, community_id=data.community_id, rules=rules, effective_from=data.applied_at,
                          note=f"template {data.template}")
    except InvalidRules:
        pass  # an operator already set rules from a later time: theirs stand


async def on_group_changed(session: AsyncSession, event: Event[GroupChanged], ctx: EngagementContext) -> None:
    """Keep each chat group's AB role: AB promotion draws candidates from A groups for the B group(s)."""
    data = event.data
    group = await session.get(GroupCopy, (data.community_id, data.group_id))
    if group is None:
        session.add(GroupCopy(
            community_id=data.community_id, group_id=data.group_id, platform=data.platform, name=data.name,
            role=data.role, capacity=data.capacity, paid=data.paid, active=data.active, changed_at=data.changed_at,
        ))
        return
    if data.changed_at < group.changed_at:
        return  # an older state arriving late must not overwrite a newer one
    group.platform, group.name, group.role = data.platform, data.name, data.role
    group.capacity, group.paid, group.active, group.changed_at = data.capacity, data.paid, data.active, data.changed_at


HANDLERS = {
    "community.created": on_community_created,
    "group.registered": on_group_changed,
    "group.updated": on_group_changed,
    "community.updated": on_community_changed,
    "community.dissolved": on_community_changed,
    "community.template_applied": on_template_applied,
    **{
        type_: on_member_changed
        for type_ in (
            "member.applied", "member.rejected", "member.joined", "member.activated", "member.renewed",
            "member.expired", "member.removed", "member.blacklisted", "member.role_changed",
            "member.groups_changed",
        )
    },
}
