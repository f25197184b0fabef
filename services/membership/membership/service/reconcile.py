"""Reconciliation (part 10): the chat groups as they really are versus the memberships.

Someone who joins a paid chat group without a membership that gives access is flagged; after a short
grace (their payment may still be on its way: events of two topics are not ordered with each other)
the community's policy applies: `flag` leaves it for the admins, `remove` asks the bot to remove them.
Blacklisted people are removed at once. Members who join a group get a seat there; leaving frees it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import permissions
from membership.context import MembershipContext
from membership.errors import InvalidState, ResourceNotFound
from membership.models import ChatGroup, Community, Membership, UnpaidJoinFlag
from membership.models.member import LIVE_STATUSES
from membership.service.access import find_membership
from membership.service.events import emit_member, request_chat_action
from membership.service.groups import release_seat, take_seat
from membership.service.ritual import on_nickname
from qunzhu_common.events.contracts.membership import UnpaidJoinChanged

OPEN_STATES = ("pending", "open")


def has_access(member: Membership | None) -> bool:
    if member is None:
        return False
    if member.role in ("owner", "admin", "guest"):
        return permissions.in_good_standing(member.role, member.status)
    return member.status in LIVE_STATUSES


async def on_chat_join(session: AsyncSession, ctx: MembershipContext, *, group_id: str, person_id: str,
                       display_name: str, joined_at: datetime) -> None:
    group = await session.get(ChatGroup, group_id)
    if group is None:
        return  # a group membership does not manage
    community = await session.get(Community, group.community_id)
    assert community is not None
    member = await find_membership(session, community.id, person_id, for_update=True)
    from membership.service.lifecycle import is_blacklisted

    if (member is not None and member.status == "blacklisted") or await is_blacklisted(
        session, owner_id=community.owner_id, person_id=person_id
    ):
        await request_chat_action(session, ctx, community_id=community.id, action="remove_member", group_id=group.id,
                                  member_id=person_id, reason="blacklisted",
                                  action_id=f"membership:remove:blacklisted-join:{group.id}:{person_id}:"
                                            f"{joined_at.isoformat()}")
        return
    if has_access(member):
        assert member is not None
        newly_seated = False
        if member.role != "owner":
            seated_before = await _seated(session, group.id, person_id)
            newly_seated = not seated_before and await take_seat(session, group_id=group.id, member=member)
        if display_name:
            await on_nickname(session, ctx, community=community, member=member, name=display_name, at=joined_at)
        if newly_seated:
            await emit_member(session, ctx, "member.groups_changed", member, reason=f"joined {group.id}")
        return
    from membership.service import arrivals

    if member is not None and member.status == "paused":
        member = await arrivals.resume_paused(session, ctx, community=community, member=member, group=group)
        if display_name:
            await on_nickname(session, ctx, community=community, member=member, name=display_name, at=joined_at)
        return
    policy = arrivals.effective_chat_join_policy(community)
    if policy == "admit" and not group.paid:  # a paid group's door stays the paywall: flagged below
        admitted = await arrivals.admit_from_chat(session, ctx, community=community, group=group, member=member,
                                                  person_id=person_id, display_name=display_name,
                                                  joined_at=joined_at)
        if admitted is not None:
            if display_name:  # the joining name counts for the ritual's nickname
                await on_nickname(session, ctx, community=community, member=admitted, name=display_name,
                                  at=joined_at)
            return
    if policy == "ignore" or not group.paid:
        return
    existing = (await session.execute(select(UnpaidJoinFlag).where(
        UnpaidJoinFlag.group_id == group.id, UnpaidJoinFlag.person_id == person_id,
        UnpaidJoinFlag.state.in_(OPEN_STATES),
    ))).scalars().first()
    if existing is None:
        session.add(UnpaidJoinFlag(
            community_id=community.id, group_id=group.id, person_id=person_id, joined_at=joined_at,
            due_at=max(joined_at, ctx.now()) + timedelta(seconds=ctx.settings.unpaid_join_grace_s),
            policy=community.unpaid_join_policy, created_at=ctx.now(),
        ))
        await session.flush()


async def _seated(session: AsyncSession, group_id: str, person_id: str) -> bool:
    from membership.models import Seat

    return await session.get(Seat, (group_id, person_id)) is not None


async def on_chat_leave(session: AsyncSession, ctx: MembershipContext, *, group_id: str, person_id: str,
                        left_at: datetime | None = None) -> None:
    group = await session.get(ChatGroup, group_id)
    if group is None:
        return
    if await release_seat(session, group_id=group_id, member_id=person_id):
        member = await find_membership(session, group.community_id, person_id, for_update=True)
        community = await session.get(Community, group.community_id)
        if member is not None and community is not None:
            from membership.service.arrivals import on_left_a_group

            if not await on_left_a_group(session, ctx, community=community, member=member, group_id=group_id,
                                         left_at=left_at or ctx.now()):
                await emit_member(session, ctx, "member.groups_changed", member, reason=f"left {group_id}")
    for flag in (await session.execute(select(UnpaidJoinFlag).where(
        UnpaidJoinFlag.group_id == group_id, UnpaidJoinFlag.person_id == person_id,
        UnpaidJoinFlag.state.in_(OPEN_STATES),
    ))).scalars().all():
        await _resolve(session, ctx, flag, "cleared")


async def _emit(session: AsyncSession, ctx: MembershipContext, flag: UnpaidJoinFlag, type_: str) -> None:
    await ctx.outbox.emit(
        session, type=type_, community_id=flag.community_id,
        data=UnpaidJoinChanged(community_id=flag.community_id, flag_id=flag.id, group_id=flag.group_id,
                               person_id=flag.person_id, joined_at=flag.joined_at, policy=flag.policy,  # type: ignore[arg-type]
                               state=flag.state, changed_at=ctx.now(), decided_by=flag.decided_by),  # type: ignore[arg-type]
    )


async def _resolve(session: AsyncSession, ctx: MembershipContext, flag: UnpaidJoinFlag, state: str,
                   *, announce: bool = False) -> None:
    """Close a flag; `unpaid_join.resolved` when it had been flagged, or when someone decided it."""
    was_public = flag.state == "open" or announce
    flag.state, flag.resolved_at = state, ctx.now()
    await session.flush()
    if was_public:
        await _emit(session, ctx, flag, "unpaid_join.resolved")


async def resolve_flags_for(session: AsyncSession, ctx: MembershipContext, *, community_id: str, person_id: str,
                            state: str) -> None:
    for flag in (await session.execute(select(UnpaidJoinFlag).where(
        UnpaidJoinFlag.community_id == community_id, UnpaidJoinFlag.person_id == person_id,
        UnpaidJoinFlag.state.in_(OPEN_STATES),
    ))).scalars().all():
        await _resolve(session, ctx, flag, state)


async def sweep_flags(session: AsyncSession, ctx: MembershipContext, *, limit: int):
    """Apply the policy to flags whose grace ended (claimed with SKIP LOCKED across replicas)."""
    now = ctx.now()
    flags = (await session.execute(
        select(UnpaidJoinFlag).where(UnpaidJoinFlag.state == "pending", UnpaidJoinFlag.due_at <= now)
        .order_by(UnpaidJoinFlag.due_at, UnpaidJoinFlag.id).limit(limit).with_for_update(skip_locked=True)
    )).scalars().all()
    acted = 0
    for flag in flags:
        community = await session.get(Community, flag.community_id)
        member = await find_membership(session, flag.community_id, flag.person_id)
        if community is None or has_access(member):
            flag.state, flag.resolved_at = "cleared", now
            continue
        flag.policy = community.unpaid_join_policy
        if flag.policy == "remove":
            await request_chat_action(session, ctx, community_id=flag.community_id, action="remove_member",
                                      group_id=flag.group_id, member_id=flag.person_id,
                                      reason="no active membership for this paid group",
                                      action_id=f"membership:remove:unpaid:{flag.id}")
            flag.state, flag.resolved_at = "removed", now
        else:
            flag.state = "open"
        await session.flush()
        await _emit(session, ctx, flag, "unpaid_join.flagged")
        ctx.metrics.after_commit(session, ctx.metrics.unpaid_joins.inc)
        acted += 1
    await session.flush()
    from membership.service.expiry import Batch

    return Batch(claimed=len(flags), done=acted)


async def list_flags(session: AsyncSession, *, community_id: str, state: str | None) -> list[UnpaidJoinFlag]:
    query = select(UnpaidJoinFlag).where(UnpaidJoinFlag.community_id == community_id)
    if state is not None:
        query = query.where(UnpaidJoinFlag.state == state)
    return list((await session.execute(query.order_by(UnpaidJoinFlag.created_at.desc()).limit(500))).scalars())


async def decide_flag(session: AsyncSession, ctx: MembershipContext, *, community: Community, flag_id: str,
                      remove: bool, decided_by: str | None = None) -> UnpaidJoinFlag:
    flag = await session.get(UnpaidJoinFlag, flag_id, with_for_update=True)
    if flag is None or flag.community_id != community.id:
        raise ResourceNotFound(f"flag {flag_id} not found in this community")
    # The owner may decide at any time: the grace only delays the automatic action, which then finds the
    # flag no longer pending and does nothing (the sweep claims pending flags only, under the row lock).
    if flag.state not in OPEN_STATES:
        raise InvalidState(f"flag {flag_id} is already {flag.state}")
    if remove:
        await request_chat_action(session, ctx, community_id=community.id, action="remove_member",
                                  group_id=flag.group_id, member_id=flag.person_id,
                                  reason="no active membership for this paid group",
                                  action_id=f"membership:remove:unpaid:{flag.id}")
    flag.decided_by = decided_by
    await _resolve(session, ctx, flag, "removed" if remove else "dismissed", announce=True)
    return flag
