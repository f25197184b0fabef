"""The paywall's access decision (part 7): member × resource tier × level × reading limit.

`decide` is pure (so the content service or the gateway could run the same rules on a projection);
`check_access` loads what it needs. A denial always says why, in a stable machine-readable `reason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from membership import permissions
from membership.models import Community, Membership
from membership.service.access import find_membership
from membership.service.lifecycle import is_blacklisted

DENIAL_BY_STATUS = {
    "applied": ("application_pending", "the application awaits review"),
    "rejected": ("application_rejected", "the application was rejected"),
    "pending_payment": ("payment_required", "membership not paid yet"),
    "pending_ritual": ("ritual_pending", "the joining ritual (introduction and nickname) is not done yet"),
    "expired": ("expired", "the membership has expired; renew to regain access"),
    "removed": ("removed", "removed from the community"),
    "blacklisted": ("blacklisted", "blacklisted by the owner"),
    "paused": ("paused", "left every chat group; joining one of them again resumes the membership"),
}


class AccessDecision(SQLModel):
    allowed: bool
    reason: str
    detail: str
    community_id: str
    member_id: str
    role: str | None = None
    status: str | None = None
    tier: str | None = None
    expires_at: datetime | None = None
    in_grace: bool = False
    visible_from: datetime | None = None


@dataclass(frozen=True)
class Resource:
    tier: str | None = None
    min_level: int = 0
    published_at: datetime | None = None


def decide(*, community: Community, member: Membership | None, member_id: str, blacklisted: bool,
           resource: Resource, member_level: int, now: datetime) -> AccessDecision:
    def result(allowed: bool, reason: str, detail: str, **extra) -> AccessDecision:  # type: ignore[no-untyped-def]
        return AccessDecision(
            allowed=allowed, reason=reason, detail=detail, community_id=community.id, member_id=member_id,
            role=member.role if member else None, status=member.status if member else None,
            tier=member.tier if member else None, expires_at=member.expires_at if member else None, **extra,
        )

    if blacklisted and (member is None or member.role != "owner"):
        return result(False, "blacklisted", "blacklisted by the owner")
    if community.status != "active":
        return result(False, "community_dissolved", "the community was dissolved")
    if member is None:
        return result(False, "not_a_member", "not a member of this community")
    if member.role in ("owner", "admin", "guest"):
        if permissions.in_good_standing(member.role, member.status):
            return result(True, "staff", f"{member.role}s see everything")
        reason, detail = DENIAL_BY_STATUS[member.status]
        return result(False, reason, detail)
    if member.status != "active":
        reason, detail = DENIAL_BY_STATUS.get(member.status, ("not_a_member", "no access"))
        return result(False, reason, detail)
    in_grace = False
    if member.expires_at is not None and now >= member.expires_at:
        if now >= member.expires_at + timedelta(days=community.grace_period_days):
            return result(False, "expired", "the membership has expired; renew to regain access")
        in_grace = True
    if resource.tier:
        tiers = list(community.tiers)
        needed = tiers.index(resource.tier) if resource.tier in tiers else None
        held = tiers.index(member.tier) if member.tier in tiers else -1
        if needed is None:
            return result(False, "tier_required", f"unknown tier {resource.tier!r} (tiers: {', '.join(tiers)})")
        if held < needed:
            return result(False, "tier_required", f"needs tier {resource.tier!r}, the membership has "
                                                  f"{member.tier or 'none'!r}", in_grace=in_grace)
    if resource.min_level and member_level < resource.min_level:
        return result(False, "level_required", f"needs level {resource.min_level}, the member is at {member_level}",
                      in_grace=in_grace)
    visible_from = None
    if community.reading_limit_days and member.joined_at is not None:
        visible_from = member.joined_at - timedelta(days=community.reading_limit_days)
        if resource.published_at is not None and resource.published_at < visible_from:
            return result(False, "reading_limit",
                          f"new members see content of the last {community.reading_limit_days} days before "
                          "they joined, and everything after", in_grace=in_grace, visible_from=visible_from)
    return result(True, "grace" if in_grace else "ok", "in the grace period after expiry" if in_grace else "access",
                  in_grace=in_grace, visible_from=visible_from)


async def check_access(session: AsyncSession, *, community: Community, member_id: str, resource: Resource,
                       member_level: int, now: datetime) -> AccessDecision:
    member = await find_membership(session, community.id, member_id)
    blacklisted = await is_blacklisted(session, owner_id=community.owner_id, person_id=member_id)
    return decide(community=community, member=member, member_id=member_id, blacklisted=blacklisted,
                  resource=resource, member_level=member_level, now=now)
