"""Members: what the gateway reads to authorize, the directory (with its privacy), roles, removal, blacklist."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import permissions
from membership.context import MembershipContext
from membership.errors import GuestLimitReached, InvalidState, MemberNotFound, PermissionDenied
from membership.models import Community, MemberPublic, Membership
from membership.models.member import LIVE_STATUSES, DirectoryEntry
from membership.service.access import (
    Actor,
    can,
    community_flags,
    find_membership,
    get_membership,
    require_person_id,
)
from membership.service.events import emit_member
from membership.service.groups import remove_from_groups
from membership.service.lifecycle import (
    admit,
    blacklist_person,
    end_membership,
    release_guest_slot,
    take_guest_slot,
)


def public_view(member: Membership, community: Community) -> MemberPublic:
    flags = community_flags(community)
    return MemberPublic(
        community_id=member.community_id, member_id=member.member_id, display_name=member.display_name,
        role=member.role, status=member.status, status_reason=member.status_reason,  # type: ignore[arg-type]
        tier=member.tier, plan_id=member.plan_id, joined_at=member.joined_at, expires_at=member.expires_at,
        referrer_id=member.referrer_id,
        in_good_standing=community.status == "active" and permissions.in_good_standing(member.role, member.status),
        permissions=[] if community.status != "active" else
        permissions.allowed_actions(role=member.role, status=member.status, settings=flags),
    )


async def view_member(session: AsyncSession, *, community: Community, actor: Actor, member_id: str,
                      actor_member: Membership | None) -> MemberPublic:
    """Self, staff (member.view_status) or an internal service may look; nobody else."""
    if actor.id != member_id and not actor.is_service and not can(actor_member, community, "member.view_status"):
        raise PermissionDenied("you may only see your own membership", action="member.view_status")
    return public_view(await get_membership(session, community.id, member_id), community)


async def directory(session: AsyncSession, *, community: Community, reader: Membership | None, offset: int,
                    limit: int) -> tuple[list[DirectoryEntry], int]:
    """Live members, oldest first; contact details only for readers allowed to see them."""
    where = (Membership.community_id == community.id, Membership.status.in_(LIVE_STATUSES))
    rows = (await session.execute(
        select(Membership).where(*where).order_by(Membership.joined_at, Membership.id).offset(offset).limit(limit)
    )).scalars().all()
    count = await session.scalar(select(func.count()).select_from(Membership).where(*where))
    see_contact = can(reader, community, "member.view_contact")
    return [
        DirectoryEntry(
            member_id=m.member_id, display_name=m.display_name, role=m.role, joined_at=m.joined_at,  # type: ignore[arg-type]
            contact=m.contact if (see_contact or (reader is not None and reader.member_id == m.member_id)) else None,
        )
        for m in rows
    ], int(count or 0)


def _require(actor: Membership, community: Community, action: str) -> None:
    if not can(actor, community, action):
        raise PermissionDenied(f"a {actor.role} may not {action}", action=action, reason="role")


async def change_role(session: AsyncSession, *, ctx: MembershipContext, community: Community, actor: Membership,
                      member_id: str, role: str) -> Membership:
    """Grant or revoke admin/guest. The matrix decides who may (`role.grant.admin` is the owner's alone);
    guests are limited per community (default 50), enforced by a conditional UPDATE and a CHECK."""
    target = await find_membership(session, community.id, member_id, for_update=True)
    current = target.role if target is not None else "member"
    if current == "owner":
        raise PermissionDenied("the owner's role cannot change")
    if current == role:
        if target is None:
            raise MemberNotFound(f"{member_id} is not a member of this community")
        return target
    if current in ("admin", "guest"):
        _require(actor, community, f"role.revoke.{current}")
    if role in ("admin", "guest"):
        _require(actor, community, f"role.grant.{role}")
    if target is not None and target.status == "blacklisted":
        raise InvalidState(f"{member_id} is blacklisted")
    if role == "guest" and not await take_guest_slot(session, community):
        raise GuestLimitReached(f"the community already has {community.guest_limit} guests (its limit)")
    if current == "guest":
        await release_guest_slot(session, community)
    prior = target.status if target is not None else "new"
    if target is None:
        require_person_id(member_id)
        target = Membership(community_id=community.id, member_id=member_id, status="new", created_at=ctx.now(),
                                changed_at=ctx.now())
        session.add(target)
    target.role = role
    if role in ("admin", "guest"):
        target.comp = True  # staff are in without paying and never expire
        if target.status not in LIVE_STATUSES:
            await admit(session, ctx, community=community, member=target, reason=f"made {role}",
                        prior_status=prior)
    else:
        target.comp = False
        await _settle_demoted(session, ctx, community=community, member=target)
    await emit_member(session, ctx, "member.role_changed", target, reason=f"{current} → {role}")
    return target


async def _settle_demoted(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                          member: Membership) -> None:
    """A former admin/guest of a paid community keeps access only as far as their own payments go."""
    if "paid" not in community.entry_policies or member.status not in LIVE_STATUSES:
        return
    if member.expires_at is None or member.expires_at <= ctx.now():
        member.status, member.status_reason = "expired", "staff role ended; no paid membership"
        await remove_from_groups(session, ctx=ctx, member=member, paid_only=True, reason=member.status_reason,
                                 cause=f"demoted:{member.id}:{ctx.now().isoformat()}")


async def remove_member(session: AsyncSession, *, ctx: MembershipContext, community: Community, actor: Membership,
                        member_id: str, reason: str, code: str = "admin") -> Membership:
    """Remove a member (admins: members and guests; only the owner removes admins)."""
    target = await get_membership(session, community.id, member_id, for_update=True)
    if target.role == "owner":
        raise PermissionDenied("the owner cannot be removed")
    _require(actor, community, f"member.remove.{target.role}")
    if target.status in ("removed", "blacklisted"):
        return target
    await end_membership(session, ctx, community=community, member=target, status="removed", reason=reason,
                         code=code, cause=f"remove:{target.id}:{ctx.now().isoformat()}")
    return target


async def blacklist_member(session: AsyncSession, *, ctx: MembershipContext, community: Community,
                           actor: Membership, person_id: str, reason: str,
                           decided_by: str | None = None) -> Membership | None:
    require_person_id(person_id)
    target = await find_membership(session, community.id, person_id, for_update=True)
    target_role = target.role if target is not None else "member"
    if target_role == "owner":
        raise PermissionDenied("the owner cannot be blacklisted")
    _require(actor, community, f"member.blacklist.{target_role}")
    await blacklist_person(session, ctx, community=community, person_id=person_id, reason=reason,
                           decided_by=decided_by or actor.member_id, member=target)
    return target


async def referral_chain(session: AsyncSession, *, community_id: str, member_id: str, max_depth: int = 20):
    """Who referred whom, upwards from a member (cycle-safe)."""
    chain, seen, current = [], set(), member_id
    while current and current not in seen and len(chain) < max_depth:
        seen.add(current)
        member = await find_membership(session, community_id, current)
        if member is None:
            break
        chain.append({"member_id": member.member_id, "referrer_id": member.referrer_id, "depth": len(chain)})
        current = member.referrer_id
    return chain


async def referred_by(session: AsyncSession, *, community_id: str, referrer_id: str) -> list[Membership]:
    return list((await session.execute(select(Membership).where(
        Membership.community_id == community_id, Membership.referrer_id == referrer_id
    ).order_by(Membership.created_at).limit(1000))).scalars().all())
