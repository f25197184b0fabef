"""Chat groups and seats. A seat is counted in `chat_group.member_count`, which a CHECK constraint keeps
within the capacity: taking a seat is one conditional UPDATE, so concurrent joins can never overfill a group.
A full group sends the next member to the next open (role A) group of the community.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from membership.context import MembershipContext
from membership.errors import AlreadyExists, CapacityExhausted, GroupNotFound, InvalidState
from membership.models import ChatGroup, Community, GroupCreate, GroupUpdate, Membership, Seat
from membership.models.member import LIVE_STATUSES
from membership.service.events import emit_member, request_chat_action
from qunzhu_common.events.contracts.identity import group_id as make_group_id
from qunzhu_common.events.contracts.membership import GroupChanged


async def _emit_group(session: AsyncSession, ctx: MembershipContext, group: ChatGroup, type_: str) -> None:
    await ctx.outbox.emit(
        session, type=type_, community_id=group.community_id,
        data=GroupChanged(
            community_id=group.community_id, group_id=group.id, platform=group.platform,  # type: ignore[arg-type]
            external_id=group.external_id, name=group.name, capacity=group.capacity, role=group.role,  # type: ignore[arg-type]
            paid=group.paid, active=group.active, changed_at=ctx.now(),
        ),
    )


async def get_group(session: AsyncSession, *, community_id: str, group_id: str) -> ChatGroup:
    group = await session.get(ChatGroup, group_id)
    if group is None or group.community_id != community_id:
        raise GroupNotFound(f"chat group {group_id} is not a group of community {community_id}")
    return group


async def list_groups(session: AsyncSession, *, community_id: str) -> list[ChatGroup]:
    rows = await session.execute(
        select(ChatGroup).where(ChatGroup.community_id == community_id)
        .order_by(ChatGroup.role, ChatGroup.position, ChatGroup.created_at, ChatGroup.id)
    )
    return list(rows.scalars().all())


async def register_group(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, data: GroupCreate
) -> ChatGroup:
    gid = make_group_id(data.platform, data.external_id)
    existing = await session.get(ChatGroup, gid)
    if existing is not None:
        raise AlreadyExists(f"chat group {gid} is already registered" +
                            (" in this community" if existing.community_id == community.id else ""))
    group = ChatGroup(
        id=gid, community_id=community.id, platform=data.platform, external_id=data.external_id, name=data.name,
        capacity=data.capacity, role=data.role,
        paid=data.paid if data.paid is not None else "paid" in community.entry_policies,
        position=data.position, created_at=ctx.now(),
    )
    session.add(group)
    await session.flush()
    await _emit_group(session, ctx, group, "group.registered")
    await seat_waiting_members(session, ctx=ctx, community_id=community.id)
    return group


async def update_group(
    session: AsyncSession, *, ctx: MembershipContext, group: ChatGroup, data: GroupUpdate
) -> ChatGroup:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "capacity" in changes and changes["capacity"] < group.member_count:
        raise InvalidState(
            f"{group.member_count} members hold seats in {group.id}; capacity cannot go below that"
        )
    for key, value in changes.items():
        setattr(group, key, value)
    await session.flush()
    await _emit_group(session, ctx, group, "group.updated")
    await seat_waiting_members(session, ctx=ctx, community_id=group.community_id)
    return group


async def take_seat(session: AsyncSession, *, group_id: str, member: Membership) -> bool:
    """Seat the member in the group if there is room; False when the group is full or inactive."""
    if await session.get(Seat, (group_id, member.member_id)) is not None:
        return True
    result = await session.execute(
        update(ChatGroup)
        .where(ChatGroup.id == group_id, ChatGroup.active.is_(True), ChatGroup.member_count < ChatGroup.capacity)
        .values(member_count=ChatGroup.member_count + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.add(Seat(group_id=group_id, member_id=member.member_id, community_id=member.community_id))
    await session.flush()
    await _expire_group(session, group_id)
    return True


async def _expire_group(session: AsyncSession, group_id: str) -> None:
    """Refresh a loaded group's counter after the UPDATE that changed it behind the ORM's back."""
    group = session.sync_session.identity_map.get(identity_key(ChatGroup, group_id))
    if group is not None:
        await session.refresh(group, ["member_count"])


async def seats_of(session: AsyncSession, *, community_id: str, member_id: str) -> list[Seat]:
    rows = await session.execute(
        select(Seat).where(Seat.community_id == community_id, Seat.member_id == member_id).order_by(Seat.group_id)
    )
    return list(rows.scalars().all())


async def assign_open_seat(session: AsyncSession, *, member: Membership) -> str | None:
    """Give a live member a seat in the first open (A) group with room; None when every group is full.

    A member already seated in an open group keeps it.
    """
    open_groups = (await session.execute(
        select(ChatGroup.id).where(
            ChatGroup.community_id == member.community_id, ChatGroup.role == "A", ChatGroup.active.is_(True)
        ).order_by(ChatGroup.position, ChatGroup.created_at, ChatGroup.id)
    )).scalars().all()
    seated = {s.group_id for s in await seats_of(session, community_id=member.community_id,
                                                  member_id=member.member_id)}
    for gid in open_groups:
        if gid in seated:
            return gid
    for gid in open_groups:
        if await take_seat(session, group_id=gid, member=member):
            return gid
    return None


async def assign_to_group(
    session: AsyncSession, *, ctx: MembershipContext, member: Membership, group: ChatGroup
) -> Membership:
    """Seat a member in a chosen group (e.g. promote to a core B group)."""
    if member.status not in LIVE_STATUSES:
        raise InvalidState(f"{member.member_id} is {member.status}; only live members get seats")
    if not await take_seat(session, group_id=group.id, member=member):
        raise CapacityExhausted(f"chat group {group.id} is full or inactive ({group.capacity} seats)")
    await emit_member(session, ctx, "member.groups_changed", member, reason=f"assigned to {group.id}")
    return member


DEFERRED_RELEASES = "qunzhu_deferred_seat_releases"


def defer_seat_counts(session: AsyncSession) -> None:
    """Batch work (expiry across many groups) counts released seats at the end, group by group in id
    order, so concurrent batches lock group rows in the same order and never deadlock each other."""
    session.sync_session.info[DEFERRED_RELEASES] = {}


async def apply_deferred_seat_counts(session: AsyncSession) -> None:
    pending: dict[str, int] = session.sync_session.info.pop(DEFERRED_RELEASES, None) or {}
    for group_id in sorted(pending):
        await session.execute(
            update(ChatGroup).where(ChatGroup.id == group_id)
            .values(member_count=ChatGroup.member_count - pending[group_id])
            .execution_options(synchronize_session=False)
        )


async def release_seat(session: AsyncSession, *, group_id: str, member_id: str) -> bool:
    result = await session.execute(
        delete(Seat).where(Seat.group_id == group_id, Seat.member_id == member_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    pending = session.sync_session.info.get(DEFERRED_RELEASES)
    if pending is not None:
        pending[group_id] = pending.get(group_id, 0) + 1
        return True
    await session.execute(
        update(ChatGroup).where(ChatGroup.id == group_id).values(member_count=ChatGroup.member_count - 1)
        .execution_options(synchronize_session=False)
    )
    await _expire_group(session, group_id)
    return True


async def remove_from_groups(
    session: AsyncSession,
    *,
    ctx: MembershipContext,
    member: Membership,
    paid_only: bool,
    reason: str,
    cause: str,
) -> list[str]:
    """Release the member's seats (only in paid groups when `paid_only`) and ask the bot to remove them.

    `cause` makes the bot actions' idempotency keys unique per causing change.
    """
    query = select(Seat.group_id).join(ChatGroup, ChatGroup.id == Seat.group_id).where(
        Seat.community_id == member.community_id, Seat.member_id == member.member_id
    )
    if paid_only:
        query = query.where(ChatGroup.paid.is_(True))
    released = []
    for gid in (await session.execute(query.order_by(Seat.group_id))).scalars().all():
        if await release_seat(session, group_id=gid, member_id=member.member_id):
            released.append(gid)
            await request_chat_action(
                session, ctx, community_id=member.community_id, action="remove_member", group_id=gid,
                member_id=member.member_id, reason=reason,
                action_id=f"membership:remove:{cause}:{gid}:{member.member_id}",
            )
    return released


async def seat_waiting_members(session: AsyncSession, *, ctx: MembershipContext, community_id: str) -> int:
    """Seat live members who got no seat because every group was full (oldest first)."""
    seated = select(Seat.member_id).where(Seat.community_id == community_id)
    waiting = (await session.execute(
        select(Membership).where(
            Membership.community_id == community_id, Membership.status.in_(LIVE_STATUSES),
            Membership.role != "owner", Membership.member_id.not_in(seated),
        ).order_by(Membership.joined_at, Membership.id).limit(1000)
    )).scalars().all()
    count = 0
    for member in waiting:
        gid = await assign_open_seat(session, member=member)
        if gid is None:
            break
        count += 1
        await emit_member(session, ctx, "member.groups_changed", member, reason=f"assigned to {gid}")
    return count
