"""Chat groups the platform creates or dismisses (#17): chat.group.created / chat.group.dismissed, from WeCom
customer group chats (the gateway's connector registers a created chat as its group when told to).

- created: a chat the gateway mapped to a community (the event's community) becomes one of its groups, as
  `POST …/groups` would register it (role A, paid when the community's entry is paid, the default capacity):
  `group.registered`, and members waiting for a seat are seated. A group already registered is left as it is.
- dismissed (解散): nobody is in it any more. The group becomes inactive (`group.updated`, active false: content
  stops broadcasting to it, no seat is taken in it), every seat in it is released (`member.groups_changed`
  for each member; dismissal is not the member leaving, so the chat leave policy does not apply) and its open
  unpaid-join flags are cleared; the members it displaced are seated in another open group when one has room.

Each runs in the chat event's inbox transaction, and a group already registered / already inactive changes
nothing, so a redelivered or re-sent event has no second effect.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.models import ChatGroup, Community, GroupCreate, Seat, UnpaidJoinFlag
from membership.service.access import find_membership
from membership.service.events import emit_member
from membership.service.groups import _emit_group, register_group, release_seat, seat_waiting_members


async def on_group_created(session: AsyncSession, ctx: MembershipContext, *, community_id: str, group_id: str,
                           platform: str) -> ChatGroup | None:
    """Register the created chat as a group of the community (None when it is not registered now)."""
    community = await session.get(Community, community_id)
    if community is None or community.status != "active" or await session.get(ChatGroup, group_id) is not None:
        return None
    prefix = f"{platform}:"
    if not group_id.startswith(prefix) or len(group_id) == len(prefix):
        return None
    try:
        data = GroupCreate(platform=platform, external_id=group_id[len(prefix):])  # type: ignore[arg-type]
    except ValidationError:  # an id membership cannot register (too long): left to the owner
        return None
    return await register_group(session, ctx=ctx, community=community, data=data)


async def on_group_dismissed(session: AsyncSession, ctx: MembershipContext, *, community_id: str, group_id: str,
                             dismissed_at: datetime) -> bool:
    """Archive the dismissed group; True when it changed."""
    from membership.service.reconcile import OPEN_STATES, _resolve

    group = await session.get(ChatGroup, group_id)
    if group is None or group.community_id != community_id or not group.active:
        return False
    group.active = False
    await session.flush()
    seated = (await session.execute(
        select(Seat.member_id).where(Seat.group_id == group_id).order_by(Seat.member_id))).scalars().all()
    for member_id in seated:
        if await release_seat(session, group_id=group_id, member_id=member_id):
            member = await find_membership(session, community_id, member_id, for_update=True)
            if member is not None:
                await emit_member(session, ctx, "member.groups_changed", member,
                                  reason=f"{group_id} dismissed {dismissed_at.isoformat()}")
    for flag in (await session.execute(select(UnpaidJoinFlag).where(
        UnpaidJoinFlag.group_id == group_id, UnpaidJoinFlag.state.in_(OPEN_STATES),
    ))).scalars().all():
        await _resolve(session, ctx, flag, "cleared")
    await session.refresh(group, ["member_count"])
    await _emit_group(session, ctx, group, "group.updated")
    await seat_waiting_members(session, ctx=ctx, community_id=community_id)
    return True
