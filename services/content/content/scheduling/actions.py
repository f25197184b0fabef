"""What a fired occurrence does, by schedule kind. Each runs inside the firing transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from content.broadcasts.service import create_broadcast
from content.community.service import Audience, resolve_audience
from content.context import ContentContext
from content.errors import InvalidState
from content.models import Ritual, Schedule, ScheduleOccurrence
from content.posts import service as posts
from content.posts.digest import digest_posts, digest_text
from content.scheduling.countdown import countdown
from content.sessions import service as sessions


async def _broadcast(
    session: AsyncSession,
    ctx: ContentContext,
    *,
    schedule: Schedule,
    occurrence: ScheduleOccurrence,
    now: datetime,
    text: str,
    source: str,
) -> None:
    audience = Audience.model_validate(schedule.payload.get("audience") or {})
    # Many occurrences of one community often fire in one batch: resolve each audience once per transaction.
    cache = session.info.setdefault("content_audiences", {})
    key = (schedule.community_id, audience.model_dump_json())
    if key not in cache:
        cache[key] = await resolve_audience(session, community_id=schedule.community_id, audience=audience)
    groups = cache[key]
    await create_broadcast(
        session,
        ctx=ctx,
        community_id=schedule.community_id,
        group_ids=groups,
        text=text,
        action=schedule.payload.get("action", "send_message"),
        mention_all=bool(schedule.payload.get("mention_all")),
        audience=audience.model_dump(),
        source=source,
        source_ref=schedule.owner_ref or f"schedule:{schedule.id}",
        occurrence_id=occurrence.id,
        created_by=schedule.created_by,
        now=now,
    )


async def fire_broadcast(session, ctx, *, schedule, occurrence, now) -> None:
    await _broadcast(
        session,
        ctx,
        schedule=schedule,
        occurrence=occurrence,
        now=now,
        text=schedule.payload["text"],
        source="schedule",
    )


async def fire_post_publish(session, ctx, *, schedule, occurrence, now) -> None:
    await posts.publish_scheduled(session, ctx=ctx, post_id=schedule.payload["post_id"], now=now)


async def fire_session_preview(session, ctx, *, schedule, occurrence, now) -> None:
    await sessions.send_preview(
        session,
        ctx=ctx,
        session_id=schedule.payload["session_id"],
        before_s=int(schedule.payload["before_s"]),
        occurrence_id=occurrence.id,
        now=now,
        catch_up=bool(schedule.payload.get("catch_up")),
    )


async def fire_session_start(session, ctx, *, schedule, occurrence, now) -> None:
    await sessions.start(
        session, ctx=ctx, session_id=schedule.payload["session_id"], occurrence_id=occurrence.id, now=now
    )


async def fire_session_end(session, ctx, *, schedule, occurrence, now) -> None:
    await sessions.end(session, ctx=ctx, session_id=schedule.payload["session_id"], now=now)


async def _ritual(session: AsyncSession, schedule: Schedule) -> Ritual:
    ritual = await session.get(Ritual, schedule.payload["ritual_id"])
    if ritual is None or ritual.status != "active":
        raise InvalidState("the ritual is not active")
    return ritual


async def fire_ritual(session, ctx, *, schedule, occurrence, now) -> None:
    ritual = await _ritual(session, schedule)
    await _broadcast(
        session,
        ctx,
        schedule=schedule,
        occurrence=occurrence,
        now=now,
        text=f"【{ritual.title}】{ritual.text}",
        source="ritual",
    )


def countdown_text(title: str, before_s: int) -> str:
    return f"【倒计时】距离「{title}」{countdown(before_s)}！"


async def fire_ritual_countdown(session, ctx, *, schedule, occurrence, now) -> None:
    ritual = await _ritual(session, schedule)
    await _broadcast(
        session,
        ctx,
        schedule=schedule,
        occurrence=occurrence,
        now=now,
        text=countdown_text(ritual.title, -schedule.offset_s),
        source="ritual",
    )


async def fire_digest(session, ctx, *, schedule, occurrence, now) -> None:
    chosen = await digest_posts(session, community_id=schedule.community_id, now=now, top=ctx.settings.digest_top_posts)
    if not chosen:
        return  # nothing worth a message this week; the occurrence still counts as fired
    await _broadcast(
        session,
        ctx,
        schedule=schedule,
        occurrence=occurrence,
        now=now,
        text=digest_text(schedule.title, chosen),
        source="digest",
    )


ACTIONS = {
    "broadcast": fire_broadcast,
    "post_publish": fire_post_publish,
    "session_preview": fire_session_preview,
    "session_start": fire_session_start,
    "session_end": fire_session_end,
    "ritual": fire_ritual,
    "ritual_countdown": fire_ritual_countdown,
    "digest": fire_digest,
}
