"""The live relay (多群同步直播): chat.events.v1 during a session → relays, questions, attendance.

chat.events.v1 is keyed by community, so one community's messages arrive in order; each relayed
message becomes a broadcast whose deliveries take the next `seq` values, and the fan-out sends in
`seq` order on chat.actions.v1 keyed by group — so every target group sees the talk in order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.broadcasts.service import create_broadcast
from content.community.service import record_presence
from content.context import ContentContext
from content.models import SessionAttendance, SessionMessage, SessionQuestion, SharingSession
from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMessagePosted
from qunzhu_common.inbox import Event

QUESTION_MARKS = ("?", "？")


async def sessions_running(
    session: AsyncSession, *, community_id: str, group_id: str, at: datetime
) -> list[SharingSession]:
    """Sessions of the community whose window holds `at` and which involve the group."""
    rows = await session.execute(
        select(SharingSession).where(
            SharingSession.community_id == community_id,
            SharingSession.status.in_(("scheduled", "live")),
            SharingSession.starts_at <= at,
            SharingSession.ends_at >= at,
        )
    )
    return [s for s in rows.scalars() if group_id == s.source_group_id or group_id in s.target_group_ids]


async def count_attendance(
    session: AsyncSession, *, shared: SharingSession, group_id: str, person_id: str, at: datetime
) -> None:
    row = await session.get(SessionAttendance, (shared.id, group_id, person_id))
    if row is None:
        session.add(
            SessionAttendance(session_id=shared.id, group_id=group_id, person_id=person_id, messages=1, first_at=at)
        )
    else:
        row.messages += 1


def is_question(text: str) -> bool:
    text = text.strip()
    return bool(text) and (text.startswith(QUESTION_MARKS) or text.endswith(QUESTION_MARKS))


def relay_text(shared: SharingSession, message: ChatMessagePosted) -> str:
    who = (
        message.sender_name or (shared.guest_name if message.sender_id == shared.guest_id else "") or message.sender_id
    )
    role = "嘉宾" if message.sender_id == shared.guest_id else "主持"
    body = message.text or f"[{message.media_kind}]"
    return f"【{role} {who}】{body}"


def relay_handlers(ctx: ContentContext) -> dict:
    async def on_message_posted(session: AsyncSession, event: Event[ChatMessagePosted]) -> None:
        data = event.data
        await record_presence(
            session,
            community_id=event.community_id,
            group_id=data.group_id,
            person_id=data.sender_id,
            present=True,
            at=data.sent_at,
        )
        for shared in await sessions_running(
            session, community_id=event.community_id, group_id=data.group_id, at=data.sent_at
        ):
            await count_attendance(
                session, shared=shared, group_id=data.group_id, person_id=data.sender_id, at=data.sent_at
            )
            speaker = data.sender_id in (shared.guest_id, shared.host_id)
            if speaker and data.group_id == shared.source_group_id:
                broadcast = await create_broadcast(
                    session,
                    ctx=ctx,
                    community_id=shared.community_id,
                    group_ids=shared.target_group_ids,
                    text=relay_text(shared, data),
                    action="relay",
                    source="relay",
                    source_ref=f"session:{shared.id}",
                    relay_of_message_id=data.message_id,
                    origin_sent_at=data.sent_at,
                    created_by=data.sender_id,
                    now=ctx.clock.now(),
                )
                session.add(
                    SessionMessage(
                        session_id=shared.id,
                        message_id=data.message_id,
                        sender_id=data.sender_id,
                        sender_name=data.sender_name,
                        text=data.text or f"[{data.media_kind}]",
                        sent_at=data.sent_at,
                        broadcast_id=broadcast.id,
                    )
                )
            elif not speaker and is_question(data.text):
                session.add(
                    SessionQuestion(
                        session_id=shared.id,
                        group_id=data.group_id,
                        message_id=data.message_id,
                        asker_id=data.sender_id,
                        asker_name=data.sender_name,
                        text=data.text.strip().strip("?？").strip() or data.text,
                        asked_at=data.sent_at,
                    )
                )

    async def on_command_issued(session: AsyncSession, event: Event[ChatCommandIssued]) -> None:
        data = event.data
        if data.command != "question" or not data.argument.strip():
            return
        for shared in await sessions_running(
            session, community_id=event.community_id, group_id=data.group_id, at=data.sent_at
        ):
            await count_attendance(
                session, shared=shared, group_id=data.group_id, person_id=data.sender_id, at=data.sent_at
            )
            session.add(
                SessionQuestion(
                    session_id=shared.id,
                    group_id=data.group_id,
                    message_id=data.message_id,
                    asker_id=data.sender_id,
                    asker_name=data.sender_name,
                    text=data.argument.strip(),
                    asked_at=data.sent_at,
                )
            )

    return {"chat.message.posted": on_message_posted, "chat.command.issued": on_command_issued}
