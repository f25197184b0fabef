"""Loading communities and memberships for a request, and the permission check every route goes through."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import permissions
from membership.errors import ActorRequired, CommunityDissolved, CommunityNotFound, MemberNotFound, PermissionDenied
from membership.models import Community, Membership

# What an internal service (X-Actor-Id: service:<name>) may ask: read-only decisions, never changes.
SERVICE_ACTIONS = frozenset({"member.view_status", "paywall.check", "member.view", "reconciliation.view"})


PLATFORM_OPERATOR = "platform-operator"
# As qunzhu_common.events.contracts.identity.PERSON_ID_PATTERN: no whitespace, no control characters.
PERSON_ID = re.compile(r"^[a-z]+:[^\s\x00-\x1f\x7f-\x9f]{1,190}$")


def require_person_id(value: str) -> str:
    """Memberships are keyed by person ids (`<platform>:<user id>`), as every event publishes them."""
    # 200 characters at most, as PersonId: a long platform prefix would otherwise pass the pattern.
    if len(value) > 200 or not PERSON_ID.fullmatch(value) or value.startswith(("service:", "apikey:")):
        from membership.errors import BadInput

        raise BadInput(f"{value!r} is not a person id (<platform>:<user id>)")
    return value


@dataclass(frozen=True)
class Actor:
    """Who is acting: a person (`<platform>:<user id>`) or an internal service (`service:<name>`)."""

    id: str
    # The operator credential acting on behalf of the person `id` (qunzhu_common.actor.Actor.via).
    via: str | None = None

    @property
    def recorded_as(self) -> str:
        """The actor as rows and events record it: `apikey:<id> for <person>` when acting on behalf."""
        return self.id if self.via is None else f"{self.via} for {self.id}"

    @property
    def is_service(self) -> bool:
        """An internal service or the platform operator: not a member of anything, never a person."""
        return self.id.startswith("service:") or self.is_platform

    @property
    def is_api_key(self) -> bool:
        """A community's API key as the gateway names it (`apikey:<id>`): acts for a community, never as a person."""
        return self.id.startswith("apikey:")

    @property
    def is_platform(self) -> bool:
        """The platform operator as the gateway names it (may create communities for any owner)."""
        return self.id == PLATFORM_OPERATOR


def community_flags(community: Community) -> dict[str, bool]:
    return {"member_list_visible": community.member_list_visible, "contact_visible": community.contact_visible}


async def load_community(
    session: AsyncSession, community_id: str, *, for_update: bool = False, allow_dissolved: bool = True
) -> Community:
    query = select(Community).where(Community.id == community_id)
    if for_update:
        query = query.with_for_update()
    community = (await session.execute(query)).scalar_one_or_none()
    if community is None:
        raise CommunityNotFound(f"community {community_id} does not exist")
    if not allow_dissolved and community.status == "dissolved":
        raise CommunityDissolved(f"community {community_id} was dissolved")
    return community


async def find_membership(
    session: AsyncSession, community_id: str, member_id: str, *, for_update: bool = False
) -> Membership | None:
    query = select(Membership).where(Membership.community_id == community_id, Membership.member_id == member_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_membership(
    session: AsyncSession, community_id: str, member_id: str, *, for_update: bool = False
) -> Membership:
    member = await find_membership(session, community_id, member_id, for_update=for_update)
    if member is None:
        raise MemberNotFound(f"{member_id} is not a member of community {community_id}")
    return member


async def authorize(
    session: AsyncSession, *, community: Community, actor: Actor | None, action: str
) -> Membership | None:
    """The actor's membership when the matrix allows `action`; PermissionDenied (403) otherwise.

    Returns None for an internal service allowed a read-only action.
    """
    if actor is None:
        raise ActorRequired("this route needs X-Actor-Id (set by the gateway after authentication)")
    if actor.is_service:
        if action in SERVICE_ACTIONS:
            return None
        raise PermissionDenied(f"internal services may not {action}", action=action)
    member = await find_membership(session, community.id, actor.id)
    if member is None:
        raise PermissionDenied(f"{actor.id} is not a member of this community", action=action, reason="not_a_member")
    if not permissions.in_good_standing(member.role, member.status):
        raise PermissionDenied(
            f"{actor.id} is {member.status}, not in good standing", action=action, reason=member.status
        )
    if not permissions.role_allows(action, member.role, community_flags(community)):
        raise PermissionDenied(f"a {member.role} may not {action}", action=action, reason="role")
    return member


async def acting_member(session: AsyncSession, *, community: Community, actor: Actor | None) -> Membership:
    """The actor's membership when they are a person in good standing here (target-specific rights are
    checked by the service with the matrix)."""
    if actor is None:
        raise ActorRequired("this route needs X-Actor-Id (set by the gateway after authentication)")
    if actor.is_service:
        raise PermissionDenied("a person must act here, not a service")
    member = await find_membership(session, community.id, actor.id)
    if member is None:
        raise PermissionDenied(f"{actor.id} is not a member of this community", reason="not_a_member")
    if not permissions.in_good_standing(member.role, member.status):
        raise PermissionDenied(f"{actor.id} is {member.status}, not in good standing", reason=member.status)
    return member


def can(member: Membership | None, community: Community, action: str) -> bool:
    if member is None:
        return False
    return permissions.allowed(action, role=member.role, status=member.status, settings=community_flags(community))
