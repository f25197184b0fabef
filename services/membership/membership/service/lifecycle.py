"""Status transitions shared by every flow: admitting a member, ending a membership, the owner's blacklist."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.errors import PermissionDenied
from membership.models import BlacklistEntry, Community, Membership, UnpaidJoinFlag
from membership.models.member import LIVE_STATUSES
from membership.service.events import emit_member
from membership.service.groups import assign_open_seat, remove_from_groups
from qunzhu_common.events.contracts.membership import BlacklistChanged

JOINED_FROM = frozenset({"applied", "rejected", "removed", "new"})


async def is_blacklisted(session: AsyncSession, *, owner_id: str, person_id: str) -> bool:
    return await session.get(BlacklistEntry, (owner_id, person_id)) is not None


async def admit(
    session: AsyncSession, ctx: MembershipContext, *, community: Community, member: Membership, reason: str,
    prior_status: str,
) -> Membership:
    """Make a membership live: `pending_ritual` until the joining ritual is done (when the community has
    one), else `active`; give it a seat; emit `member.joined` (first time) and/or `member.activated`."""
    now = ctx.now()
    member.joined_at = member.joined_at or now
    ritual_due = community.ritual_enabled and member.role == "member" and member.ritual_done_at is None
    member.status = "pending_ritual" if ritual_due else "active"
    member.status_reason = reason
    await assign_open_seat(session, member=member)
    if member.status == "active":
        if prior_status in JOINED_FROM:
            await emit_member(session, ctx, "member.joined", member, reason=reason)
        await emit_member(session, ctx, "member.activated", member, reason=reason)
    else:  # paid or admitted, the joining ritual still to do
        await emit_member(session, ctx, "member.joined", member, reason=reason)
    await clear_unpaid_flags(session, ctx, member=member)
    return member


async def clear_unpaid_flags(session: AsyncSession, ctx: MembershipContext, *, member: Membership) -> None:
    """Someone flagged in a paid group who now has access is no longer a problem."""
    from membership.service.reconcile import resolve_flags_for

    await resolve_flags_for(session, ctx, community_id=member.community_id, person_id=member.member_id,
                            state="cleared")


async def end_membership(
    session: AsyncSession,
    ctx: MembershipContext,
    *,
    community: Community,
    member: Membership,
    status: str,
    reason: str,
    code: str,
    cause: str,
    paid_groups_only: bool = False,
) -> list[str]:
    """Move a membership to `expired`, `removed` or `blacklisted`, release its seats (all, or only those in
    paid groups) with a bot remove command for each, and emit the matching member event."""
    if member.role == "owner":
        raise PermissionDenied("the owner cannot be removed, expired or blacklisted")
    if status != "expired" and member.role in ("admin", "guest"):
        if member.role == "guest":
            await _release_guest_slot(session, community)
        member.role = "member"
        member.comp = False
    member.status = status
    member.status_reason = reason
    released = await remove_from_groups(session, ctx=ctx, member=member, paid_only=paid_groups_only,
                                        reason=reason, cause=cause)
    type_ = {"expired": "member.expired", "removed": "member.removed", "blacklisted": "member.blacklisted"}[status]
    await emit_member(session, ctx, type_, member, reason=reason)
    if status != "expired":
        ctx.metrics.after_commit(session, lambda: ctx.metrics.removals.labels(code).inc())
    return released


async def _release_guest_slot(session: AsyncSession, community: Community) -> None:
    await session.execute(
        update(Community).where(Community.id == community.id, Community.guest_count > 0)
        .values(guest_count=Community.guest_count - 1).execution_options(synchronize_session=False)
    )
    await session.refresh(community, ["guest_count"])


async def take_guest_slot(session: AsyncSession, community: Community) -> bool:
    result = await session.execute(
        update(Community).where(Community.id == community.id, Community.guest_count < Community.guest_limit)
        .values(guest_count=Community.guest_count + 1).execution_options(synchronize_session=False)
    )
    await session.refresh(community, ["guest_count"])
    return result.rowcount == 1


release_guest_slot = _release_guest_slot


async def blacklist_person(
    session: AsyncSession, ctx: MembershipContext, *, community: Community, person_id: str, reason: str,
    decided_by: str, member: Membership | None,
) -> None:
    """Blacklist a person for all of the owner's communities, and end their membership here."""
    if person_id == community.owner_id:
        raise PermissionDenied("the owner cannot be blacklisted")
    if not await is_blacklisted(session, owner_id=community.owner_id, person_id=person_id):
        session.add(BlacklistEntry(owner_id=community.owner_id, person_id=person_id, community_id=community.id,
                                   reason=reason, decided_by=decided_by, created_at=ctx.now()))
        await session.flush()
        await ctx.outbox.emit(
            session, type="blacklist.changed", community_id=community.id,
            data=BlacklistChanged(community_id=community.id, owner_id=community.owner_id, person_id=person_id,
                                  listed=True, reason=reason, decided_by=decided_by, changed_at=ctx.now()),
        )
    if member is not None and member.status != "blacklisted":
        await end_membership(session, ctx, community=community, member=member, status="blacklisted",
                             reason=reason, code="blacklisted", cause=f"blacklist:{member.id}")


async def lift_blacklist(
    session: AsyncSession, ctx: MembershipContext, *, community: Community, person_id: str, decided_by: str
) -> bool:
    entry = await session.get(BlacklistEntry, (community.owner_id, person_id))
    if entry is None:
        return False
    await session.delete(entry)
    # Their memberships stay ended; lifting only allows them to join again.
    rows = (await session.execute(
        select(Membership).join(Community, Community.id == Membership.community_id).where(
            Community.owner_id == community.owner_id, Membership.member_id == person_id,
            Membership.status == "blacklisted",
        )
    )).scalars().all()
    for member in rows:
        member.status = "removed"
        member.status_reason = "blacklist lifted"
        await emit_member(session, ctx, "member.removed", member)
    await session.flush()
    await ctx.outbox.emit(
        session, type="blacklist.changed", community_id=community.id,
        data=BlacklistChanged(community_id=community.id, owner_id=community.owner_id, person_id=person_id,
                              listed=False, decided_by=decided_by, changed_at=ctx.now()),
    )
    return True


def is_live(member: Membership | None) -> bool:
    return member is not None and member.status in LIVE_STATUSES


_ = UnpaidJoinFlag
