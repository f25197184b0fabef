"""chat.events.v1: messages, commands, reactions and red packets become activities; joins/leaves
keep the group rosters (and feed group health)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities import dispatch as activities
from engagement.context import EngagementContext
from engagement.homework import service as homework
from engagement.models import Activity, GroupMember, NewActivity
from engagement.scoring.classify import text_hash
from engagement.scoring.engine import queue_activity, score_queued_now
from engagement.scoring.recall import withdraw
from qunzhu_common.events.contracts.chat import (
    ChatCommandIssued,
    ChatMemberJoined,
    ChatMemberLeft,
    ChatMentionResolved,
    ChatMessagePosted,
    ChatMessageRecalled,
    ChatReactionAdded,
    ChatRedPacketSent,
)
from qunzhu_common.inbox import Event
from qunzhu_common.timeutil import utcnow


def _activity(event: Event, **fields) -> NewActivity:  # type: ignore[type-arg]
    return NewActivity(
        community_id=event.community_id, source_event_id=event.id, source_type=event.envelope.type,
        received_at=utcnow(), **fields,
    )


async def on_message_posted(session: AsyncSession, event: Event[ChatMessagePosted], ctx: EngagementContext) -> None:
    d = event.data
    await activities.on_message(session, ctx, event)
    await queue_activity(session, ctx, activity=_activity(
        event, kind="message", person_id=d.sender_id, group_id=d.group_id, other_id=d.reply_to_sender_id,
        occurred_at=d.sent_at, message_id=d.message_id, reply_to_message_id=d.reply_to_message_id,
        text=d.text, text_hash=text_hash(d.text) if d.text.strip() else "", links=list(d.links),
        mentions=list(d.mentions), media_kind=d.media_kind, extra={"forwarded": d.forwarded} if d.forwarded else {},
    ))


async def on_command_issued(session: AsyncSession, event: Event[ChatCommandIssued], ctx: EngagementContext) -> None:
    d = event.data
    await activities.on_command(session, ctx, event)
    if d.command == "homework":
        assignment, content = await homework.resolve_assignment(
            session, community_id=event.community_id, argument=d.argument, at=d.sent_at
        )
        if assignment is not None:
            await homework.submit(
                session, ctx, assignment=assignment, person_id=d.sender_id, content=content or d.argument,
                at=d.sent_at, source="chat", source_event_id=event.id, group_id=d.group_id, message_id=d.message_id,
            )
            return
    await queue_activity(session, ctx, activity=_activity(
        event, kind=d.command, person_id=d.sender_id, group_id=d.group_id, occurred_at=d.sent_at,
        message_id=d.message_id, text=d.argument,
    ))


async def on_reaction_added(session: AsyncSession, event: Event[ChatReactionAdded], ctx: EngagementContext) -> None:
    d = event.data
    if d.target_sender_id is None:
        activity = _activity(event, kind="reaction_given", person_id=d.reactor_id, group_id=d.group_id,
                             occurred_at=d.reacted_at, message_id=d.message_id, text=d.emoji)
    else:
        # The author of the message is the one whose standing a reaction says something about.
        activity = _activity(event, kind="reaction", person_id=d.target_sender_id, other_id=d.reactor_id,
                             group_id=d.group_id, occurred_at=d.reacted_at, message_id=d.message_id, text=d.emoji)
    await queue_activity(session, ctx, activity=activity)


async def on_red_packet_sent(session: AsyncSession, event: Event[ChatRedPacketSent], ctx: EngagementContext) -> None:
    d = event.data
    await queue_activity(session, ctx, activity=_activity(
        event, kind="red_packet", person_id=d.sender_id, group_id=d.group_id, occurred_at=d.sent_at,
        extra={"amount_fen": d.amount_fen, "count": d.count},
    ))


async def on_mention_resolved(session: AsyncSession, event: Event[ChatMentionResolved], ctx: EngagementContext) -> None:
    """An @-name of an earlier message now names a person (the gateway resolves names, in its one order of
    deliveries): the message gains the mention, as if it had been resolved at once (key people read it)."""
    d = event.data
    await score_queued_now(session)  # the message may have come in this same batch
    rows = (await session.execute(select(Activity).where(
        Activity.community_id == event.community_id, Activity.message_id == d.message_id,
        Activity.group_id == d.group_id, Activity.kind == "message",
    ))).scalars().all()
    for row in rows:
        if d.mentioned_id not in row.mentions:
            row.mentions = [*row.mentions, d.mentioned_id]


async def on_message_recalled(session: AsyncSession, event: Event[ChatMessageRecalled],
                              ctx: EngagementContext) -> None:
    """A withdrawn message no longer counts: what it earned is reversed in the ledger (scoring/recall.py)."""
    d = event.data
    await withdraw(session, ctx, community_id=event.community_id, group_id=d.group_id, message_id=d.message_id)


async def on_member_joined(session: AsyncSession, event: Event[ChatMemberJoined], ctx: EngagementContext) -> None:
    d = event.data
    row = await session.get(GroupMember, (event.community_id, d.group_id, d.member_id))
    if row is None:
        session.add(GroupMember(community_id=event.community_id, group_id=d.group_id, person_id=d.member_id,
                                joined_at=d.joined_at))
    else:
        row.joined_at, row.left_at = d.joined_at, None
    await activities.on_member_joined(session, ctx, event)
    await queue_activity(session, ctx, activity=_activity(
        event, kind="group_join", person_id=d.member_id, group_id=d.group_id, other_id=d.inviter_id,
        occurred_at=d.joined_at,
    ))


async def on_member_left(session: AsyncSession, event: Event[ChatMemberLeft], ctx: EngagementContext) -> None:
    d = event.data
    row = await session.get(GroupMember, (event.community_id, d.group_id, d.member_id))
    if row is not None:
        row.left_at = d.left_at
    await queue_activity(session, ctx, activity=_activity(
        event, kind="group_leave", person_id=d.member_id, group_id=d.group_id, other_id=d.removed_by,
        occurred_at=d.left_at,
    ))


HANDLERS = {
    "chat.message.posted": on_message_posted,
    "chat.command.issued": on_command_issued,
    "chat.reaction.added": on_reaction_added,
    "chat.red_packet.sent": on_red_packet_sent,
    "chat.member.joined": on_member_joined,
    "chat.member.left": on_member_left,
    "chat.mention.resolved": on_mention_resolved,
    "chat.message.recalled": on_message_recalled,
}
