"""content.events.v1: posts, answers and sharing-session attendance become activities."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.models import Activity
from engagement.scoring.engine import record_activity
from qunzhu_common.events.contracts.content import CommentPosted, PostPublished, SessionEnded
from qunzhu_common.inbox import Event
from qunzhu_common.timeutil import utcnow


def derived_id(event_id: str, person_id: str) -> str:
    """One source id per (event, person) when one event scores several people (unique, replayable)."""
    return str(uuid.uuid5(uuid.UUID(event_id), person_id))


async def on_post_published(session: AsyncSession, event: Event[PostPublished], ctx: EngagementContext) -> None:
    d = event.data
    await record_activity(session, ctx, activity=Activity(
        community_id=event.community_id, source_event_id=event.id, source_type=event.envelope.type,
        kind="question" if d.kind == "question" else "post_published", person_id=d.author_id,
        occurred_at=d.published_at, message_id=f"post:{d.post_id}", text=d.title,
        extra={"post_id": d.post_id, "post_kind": d.kind}, received_at=utcnow(),
    ))


async def on_comment_posted(session: AsyncSession, event: Event[CommentPosted], ctx: EngagementContext) -> None:
    d = event.data
    answer = d.kind == "answer" and d.author_id != d.post_author_id
    await record_activity(session, ctx, activity=Activity(
        community_id=event.community_id, source_event_id=event.id, source_type=event.envelope.type,
        kind="answer" if answer else "comment", person_id=d.author_id, other_id=d.post_author_id,
        occurred_at=d.posted_at, reply_to_message_id=f"post:{d.post_id}",
        extra={"post_id": d.post_id, "comment_id": d.comment_id}, received_at=utcnow(),
    ))


async def on_session_ended(session: AsyncSession, event: Event[SessionEnded], ctx: EngagementContext) -> None:
    d = event.data
    seen: set[str] = set()
    for group in d.attendance:
        for person in group.attendee_ids:
            if person in seen or person in (d.guest_id, d.host_id):
                continue
            seen.add(person)
            await record_activity(session, ctx, activity=Activity(
                community_id=event.community_id, source_event_id=derived_id(event.id, person),
                source_type=event.envelope.type, kind="session_attended", person_id=person,
                group_id=group.group_id, other_id=d.guest_id, occurred_at=d.ended_at,
                extra={"session_id": d.session_id, "topic": d.topic, "event_id": event.id}, received_at=utcnow(),
            ))


HANDLERS = {
    "post.published": on_post_published,
    "comment.posted": on_comment_posted,
    "session.ended": on_session_ended,
}
