"""Chat → activities: lottery keywords, `投票 2`, first answers (messages), `接龙` and 打卡 (commands),
group-size campaigns (joins).

Called by the chat handlers before they record the message as an activity. Each activity's effect runs
in a savepoint: a refused input (late, ineligible, malformed) is rolled back and logged, never fails the
event (a retry could not help), and the message is still scored as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities import campaigns, chains, lottery, polls
from engagement.activities.common import forget_open_rows
from engagement.context import EngagementContext, drop_staged_after, staged_mark
from engagement.scoring.engine import score_queued_now
from qunzhu_common.errors import AppError
from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMemberJoined, ChatMessagePosted
from qunzhu_common.inbox import Event

log = logging.getLogger(__name__)


async def _guarded(session: AsyncSession, what: str, step: Callable[[], Awaitable[object]], *,
                   scores: bool = False) -> None:
    if scores:
        # The step records a participation or asks for scores (a lottery's minimum level, today's check-in,
        # a check-in run), which scores the batch's queued activities first: here, outside the savepoint,
        # or refusing the step would roll their scoring back with it.
        await score_queued_now(session)
    mark = staged_mark(session)
    try:
        async with session.begin_nested():
            await step()
    except AppError as exc:
        forget_open_rows(session)
        drop_staged_after(session, mark)  # its events go with the savepoint
        log.info("chat %s refused: %s", what, exc.detail)


# Every chat message passes here: the checks before a savepoint are in memory (open activities are read
# once per transaction), so a message that enters nothing costs no round trip.


async def on_message(session: AsyncSession, ctx: EngagementContext, event: Event[ChatMessagePosted]) -> None:
    d, cid = event.data, event.community_id
    if not ctx.live:
        return

    found = await lottery.open_for_keyword(session, community_id=cid, group_id=d.group_id, text=d.text, at=d.sent_at)
    if found is not None:
        await _guarded(session, "lottery entry", lambda: lottery.enter(
            session, ctx, lottery=found, person_id=d.sender_id, at=d.sent_at, source="chat", group_id=d.group_id),
            scores=True)

    choices = polls.parse_vote(d.text)
    if choices is not None:
        poll = await polls.open_in_group(session, community_id=cid, group_id=d.group_id, at=d.sent_at)
        if poll is not None:
            await _guarded(session, "vote", lambda: polls.vote(
                session, ctx, poll=poll, person_id=d.sender_id, choices=choices, at=d.sent_at, group_id=d.group_id),
                scores=True)

    if await campaigns.has_open(session, community_id=cid, trigger="first_answer", at=d.sent_at):
        await _guarded(session, "campaign answer", lambda: campaigns.on_message(
            session, ctx, community_id=cid, group_id=d.group_id, person_id=d.sender_id, text=d.text, at=d.sent_at))


async def on_command(session: AsyncSession, ctx: EngagementContext, event: Event[ChatCommandIssued]) -> None:
    d, cid = event.data, event.community_id
    if not ctx.live:
        return
    if d.command == "signup_chain":
        await _guarded(session, "接龙", lambda: chains.from_chat(
            session, ctx, community_id=cid, group_id=d.group_id, person_id=d.sender_id, sender_name=d.sender_name,
            argument=d.argument, at=d.sent_at), scores=True)
    if d.command == "checkin" and await campaigns.has_open(session, community_id=cid, trigger="checkin_streak",
                                                           at=d.sent_at):
        await _guarded(session, "check-in campaign", lambda: campaigns.on_checkin(
            session, ctx, community_id=cid, person_id=d.sender_id, at=d.sent_at), scores=True)


async def on_member_joined(session: AsyncSession, ctx: EngagementContext, event: Event[ChatMemberJoined]) -> None:
    """After the roster has the new member: group-size campaigns."""
    d = event.data
    if not ctx.live:
        return
    if await campaigns.has_open(session, community_id=event.community_id, trigger="group_size", at=d.joined_at):
        await _guarded(session, "group-size campaign", lambda: campaigns.on_member_joined(
            session, ctx, community_id=event.community_id, group_id=d.group_id, at=d.joined_at))
