"""People who arrive from the chat, and members who leave every group (#17).

A chat join by someone without a live membership follows the community's `chat_join_policy`: `admit`
makes them a member at once (active, or `pending_ritual` while the joining ritual is on — its reminders
and checks are the usual ones), `flag` is the unpaid-join reconciliation (reconcile.py), `ignore` does
nothing. A member who left every chat group follows `chat_leave_policy`: `keep`, `pause` (status `paused`,
no access, back to live when they join a group again — the membership's end date keeps running) or `end`
(status `removed`, reason "left every chat group"; they may come back like anyone else).

Each is one transaction in the consumer's inbox, so a redelivered join or leave has no second effect; a
re-sent join under a new delivery id finds the membership already live and changes nothing either.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.models import ChatGroup, Community, Membership, Seat
from membership.models.member import LIVE_STATUSES
from membership.service.events import emit_member
from membership.service.groups import take_seat
from membership.service.lifecycle import admit, end_membership

ADMITTED_FROM_CHAT = "joined a chat group"
LEFT_EVERY_GROUP = "left every chat group"
# Someone an admin removed or an applicant turned down is not let in by a chat join (but someone whose
# membership ended because they left every group is, like a newcomer).
NOT_READMITTED = frozenset({"removed", "rejected", "blacklisted"})


def effective_chat_join_policy(community: Community) -> str:
    """The community's chat join policy; unset: `admit` for a free (open) community, `flag` otherwise."""
    if community.chat_join_policy:
        return community.chat_join_policy
    return "admit" if list(community.entry_policies) == ["free"] else "flag"


async def resume_paused(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                        member: Membership, group: ChatGroup | None) -> Membership:
    """A paused member is back in a group: live again (seated there first, so admit keeps that seat)."""
    if group is not None:
        await take_seat(session, group_id=group.id, member=member)
    reason = f"back in {group.id}" if group is not None else "back"
    return await admit(session, ctx, community=community, member=member, reason=reason, prior_status="paused")


async def admit_from_chat(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                          group: ChatGroup, member: Membership | None, person_id: str, display_name: str,
                          joined_at: datetime) -> Membership | None:
    """`admit`: the person who joined `group` becomes a member (None when they may not be let in this way)."""
    if community.status != "active":
        return None
    if member is not None and (member.status in LIVE_STATUSES or (
            member.status in NOT_READMITTED and member.status_reason != LEFT_EVERY_GROUP)):
        return None
    prior = "new" if member is None else member.status
    if member is None:
        member = Membership(community_id=community.id, member_id=person_id, status="new", created_at=ctx.now(),
                            changed_at=ctx.now())
        session.add(member)
    member.role, member.comp = "member", False
    member.display_name = display_name or member.display_name
    member.joined_at = member.joined_at or joined_at
    await session.flush()
    await take_seat(session, group_id=group.id, member=member)  # where they are, before admit seats them
    return await admit(session, ctx, community=community, member=member, reason=ADMITTED_FROM_CHAT,
                       prior_status=prior)


async def on_left_a_group(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                          member: Membership, group_id: str, left_at: datetime) -> bool:
    """After a member's seat in `group_id` was released: apply the leave policy when it was their last group.
    True when the membership changed (its event is emitted here)."""
    if member.role != "member" or member.status not in LIVE_STATUSES or community.chat_leave_policy == "keep":
        return False
    seats = (await session.execute(
        select(func.count()).select_from(Seat).where(Seat.community_id == community.id,
                                                      Seat.member_id == member.member_id)
    )).scalar_one()
    if seats:
        return False
    if community.chat_leave_policy == "pause":
        member.status, member.status_reason = "paused", LEFT_EVERY_GROUP
        await emit_member(session, ctx, "member.groups_changed", member, reason=f"left {group_id}")
        return True
    await end_membership(session, ctx, community=community, member=member, status="removed", reason=LEFT_EVERY_GROUP,
                         code="left_chat", cause=f"left-chat:{group_id}:{left_at.isoformat()}")
    return True
