"""Sharing sessions: scheduling them with their previews, starting, ending and the summary."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.broadcasts.service import create_broadcast
from content.community.service import STAFF, check_groups, get_community, require_role
from content.context import ContentContext
from content.errors import InvalidField, InvalidState, NotAllowed, SessionNotFound
from content.models import SessionAttendance, SessionMessage, SessionQuestion, SharingSession
from content.scheduling import rules
from content.scheduling.countdown import countdown
from content.scheduling.service import cancel as cancel_schedule
from content.scheduling.service import create_schedule, schedules_of
from content.sessions.schemas import SessionCreate
from qunzhu_common.actor import Actor
from qunzhu_common.events.contracts.content import (
    GroupAttendance,
    SessionAnnounced,
    SessionEnded,
    SessionStarted,
)


def _fields(s: SharingSession) -> dict:
    return dict(
        community_id=s.community_id,
        session_id=s.id,
        topic=s.topic,
        guest_id=s.guest_id,
        host_id=s.host_id,
        source_group_id=s.source_group_id,
        target_group_ids=s.target_group_ids,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
    )


def all_groups(s: SharingSession) -> list[str]:
    return [s.source_group_id, *s.target_group_ids]


def local_time(s: SharingSession, moment: datetime) -> str:
    return moment.astimezone(rules.zone(s.timezone)).strftime("%m月%d日 %H:%M")


def human_span(seconds: float) -> str:
    """An offset as people say it, exactly: "2 天", "1 小时 30 分钟", "45 秒" (for titles; a countdown to
    read in a group rounds as a clock is read: `countdown`)."""
    seconds = max(int(round(seconds)), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "天"), (hours, "小时"), (minutes, "分钟"), (secs, "秒")) if n]
    return " ".join(parts) or "0 秒"


def schedule_title(what: str, topic: str, note: str = "") -> str:
    """A generated schedule's title, e.g. "预告：<topic>（提前 2 天）", within the schedule's 200 characters."""
    tail = f"（{note}）" if note else ""
    room = 200 - len(what) - 1 - len(tail)
    if len(topic) > room:
        topic = topic[: room - 1] + "…"
    return f"{what}：{topic}{tail}"


async def create_session(
    session: AsyncSession, *, ctx: ContentContext, community_id: str, actor: Actor, data: SessionCreate, now: datetime
) -> SharingSession:
    await require_role(session, community_id=community_id, actor=actor, roles=STAFF, doing="schedule sessions")
    community = await get_community(session, community_id=community_id)
    if data.starts_at <= now:
        raise InvalidField("starts_at", "a session must start in the future")
    targets = [g for g in dict.fromkeys(data.target_group_ids) if g != data.source_group_id]
    if not targets:
        raise InvalidField("target_group_ids", "at least one target group other than the source group")
    await check_groups(session, community_id=community_id, group_ids=[data.source_group_id, *targets])
    shared = SharingSession(
        community_id=community_id,
        topic=data.topic,
        description=data.description,
        guest_id=data.guest_id,
        guest_name=data.guest_name,
        host_id=data.host_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        timezone=data.timezone or community.timezone,
        source_group_id=data.source_group_id,
        target_group_ids=targets,
        created_by=actor.recorded_as,
        created_at=now,
    )
    session.add(shared)
    await session.flush()
    common = dict(
        ctx=ctx,
        community_id=community_id,
        timezone=shared.timezone,
        created_by=actor.recorded_as,
        now=now,
        owner_ref=f"session:{shared.id}",
        misfire_grace_s=None,
    )
    offsets = data.preview_offsets_s if data.preview_offsets_s is not None else ctx.settings.session_preview_offsets_s
    offsets = sorted(set(offsets), reverse=True)
    future = [o for o in offsets if shared.starts_at - timedelta(seconds=o) > now]
    # (seconds before the start, title label, payload extras) of each preview to schedule.
    previews = [(offset, f"提前 {human_span(offset)}", {}) for offset in future]
    if len(future) < len(offsets) and ctx.settings.session_catch_up_preview:
        # Previews whose time has passed (a late organiser): one catch-up preview at once stands for them all.
        left = int((shared.starts_at - now).total_seconds())
        previews.insert(0, (left, f"补发，提前 {human_span(left)}", {"catch_up": True}))
    for before_s, label, extra in previews:
        await create_schedule(
            session,
            kind="session_preview",
            starts_at=shared.starts_at,
            offset_s=-before_s,
            title=schedule_title("预告", shared.topic, label),
            payload={"session_id": shared.id, "before_s": before_s, **extra},
            **common,
        )
    await create_schedule(
        session,
        kind="session_start",
        starts_at=shared.starts_at,
        title=schedule_title("开始", shared.topic),
        payload={"session_id": shared.id},
        **common,
    )
    await create_schedule(
        session,
        kind="session_end",
        starts_at=shared.ends_at,
        title=schedule_title("结束", shared.topic),
        payload={"session_id": shared.id},
        **common,
    )
    await ctx.outbox.emit(
        session,
        type="session.announced",
        community_id=community_id,
        data=SessionAnnounced(**_fields(shared), announced_at=now),
    )
    return shared


async def get_session(session: AsyncSession, *, session_id: str, community_id: str | None = None) -> SharingSession:
    shared = await session.get(SharingSession, session_id)
    if shared is None or (community_id is not None and shared.community_id != community_id):
        raise SessionNotFound(f"sharing session {session_id} does not exist")
    return shared


def preview_text(s: SharingSession, before_s: int, *, catch_up: bool = False) -> str:
    guest = s.guest_name or s.guest_id
    when = local_time(s, s.starts_at)
    if before_s >= 24 * 3600:
        return (
            f"【嘉宾分享预告】{when}，{guest} 分享「{s.topic}」。{s.description}\n欢迎转发给需要的朋友，准时来群里听！"
        ).strip()
    left = countdown(before_s)
    if catch_up:  # the only preview some members get: what, when, and the request to forward it
        return (
            f"【嘉宾分享预告 · {left}】{when}，{guest} 分享「{s.topic}」。{s.description}\n"
            "欢迎转发给需要的朋友，准时来群里听！"
        )
    return f"【{left}】{guest} 的分享「{s.topic}」{when} 开始，准备好问题哦。"


async def send_preview(
    session: AsyncSession,
    *,
    ctx: ContentContext,
    session_id: str,
    before_s: int,
    occurrence_id: str,
    now: datetime,
    catch_up: bool = False,
) -> None:
    shared = await get_session(session, session_id=session_id)
    if shared.status != "scheduled":
        raise InvalidState(f"session is {shared.status}")
    if catch_up:  # say how long is really left when it goes out
        before_s = max(int((shared.starts_at - now).total_seconds()), 0)
    await create_broadcast(
        session,
        ctx=ctx,
        community_id=shared.community_id,
        group_ids=all_groups(shared),
        text=preview_text(shared, before_s, catch_up=catch_up),
        action="announce",
        source="session",
        source_ref=f"session:{shared.id}",
        occurrence_id=occurrence_id,
        created_by="content",
        now=now,
    )


async def start(
    session: AsyncSession, *, ctx: ContentContext, session_id: str, occurrence_id: str, now: datetime
) -> None:
    shared = await get_session(session, session_id=session_id)
    if shared.status != "scheduled":
        raise InvalidState(f"session is {shared.status}")
    shared.status, shared.started_at = "live", now
    await create_broadcast(
        session,
        ctx=ctx,
        community_id=shared.community_id,
        group_ids=all_groups(shared),
        text=f"【现在开始】{shared.guest_name or shared.guest_id} 的分享「{shared.topic}」，"
        "嘉宾的发言会同步到各群；提问请以 ? 开头。",
        action="announce",
        source="session",
        source_ref=f"session:{shared.id}",
        occurrence_id=occurrence_id,
        created_by="content",
        now=now,
    )
    await ctx.outbox.emit(
        session,
        type="session.started",
        community_id=shared.community_id,
        data=SessionStarted(**_fields(shared), started_at=now),
    )


async def end(session: AsyncSession, *, ctx: ContentContext, session_id: str, now: datetime) -> SharingSession:
    shared = await get_session(session, session_id=session_id)
    if shared.status not in ("scheduled", "live"):
        raise InvalidState(f"session is {shared.status}")
    talk = list(
        (
            await session.execute(
                select(SessionMessage).where(SessionMessage.session_id == shared.id).order_by(SessionMessage.seq)
            )
        ).scalars()
    )
    questions = list(
        (
            await session.execute(
                select(SessionQuestion).where(SessionQuestion.session_id == shared.id).order_by(SessionQuestion.seq)
            )
        ).scalars()
    )
    attendance = list(
        (
            await session.execute(
                select(SessionAttendance)
                .where(SessionAttendance.session_id == shared.id)
                .order_by(SessionAttendance.group_id, SessionAttendance.person_id)
            )
        ).scalars()
    )
    shared.status, shared.ended_at = "ended", now
    shared.summary_draft = summary_draft(shared, talk, questions)
    per_group = []
    for group_id in all_groups(shared):
        rows = [a for a in attendance if a.group_id == group_id]
        per_group.append(
            GroupAttendance(
                group_id=group_id,
                attendee_ids=[a.person_id for a in rows],
                messages=sum(a.messages for a in rows),
                relayed_messages=0 if group_id == shared.source_group_id else len(talk),
            )
        )
    await ctx.outbox.emit(
        session,
        type="session.ended",
        community_id=shared.community_id,
        data=SessionEnded(
            **_fields(shared),
            ended_at=now,
            attendance=per_group,
            talk_messages=len(talk),
            questions=len(questions),
            questioner_ids=list(dict.fromkeys(q.asker_id for q in questions)),
        ),
    )
    return shared


def summary_draft(s: SharingSession, talk: list[SessionMessage], questions: list[SessionQuestion]) -> str:
    guest = s.guest_name or s.guest_id
    lines = [
        f"# {s.topic} — 分享总结",
        "",
        f"嘉宾：{guest}　时间：{local_time(s, s.starts_at)}–{local_time(s, s.ends_at)[-5:]}",
        "",
        "## 分享内容",
        "",
    ]
    for m in talk:
        who = "" if m.sender_id == s.guest_id else "（主持）"
        lines.append(f"- {who}{m.text}")
    lines += ["", "## 问答", ""]
    for i, q in enumerate(questions, 1):
        lines.append(f"{i}. {q.asker_name or q.asker_id}：{q.text}")
    return "\n".join(lines).strip() + "\n"


async def cancel(
    session: AsyncSession, *, ctx: ContentContext, shared: SharingSession, actor: Actor, now: datetime
) -> None:
    await require_role(session, community_id=shared.community_id, actor=actor, roles=STAFF, doing="cancel sessions")
    if shared.status != "scheduled":
        raise InvalidState(f"a {shared.status} session cannot be cancelled")
    shared.status = "cancelled"
    for schedule in await schedules_of(session, owner_ref=f"session:{shared.id}"):
        await cancel_schedule(session, ctx=ctx, schedule=schedule, now=now)


async def require_host_or_staff(session: AsyncSession, *, shared: SharingSession, actor: Actor, doing: str) -> None:
    if actor.is_person and actor.id == shared.host_id:
        return
    try:
        await require_role(session, community_id=shared.community_id, actor=actor, roles=STAFF, doing=doing)
    except NotAllowed:
        raise NotAllowed(f"{actor.id} may not {doing}: only the host, the owner or an admin") from None


async def questions_of(session: AsyncSession, *, session_id: str) -> list[SessionQuestion]:
    rows = await session.execute(
        select(SessionQuestion).where(SessionQuestion.session_id == session_id).order_by(SessionQuestion.seq)
    )
    return list(rows.scalars())
