"""Celebrations (归属感): a congratulation in the member's group when they reach a level, complete a
check-in challenge, win a scholarship, or on their membership anniversary.

Engagement reacts to its own events (level.reached, checkin_challenge.completed, scholarship.awarded)
as a consumer of engagement.events.v1, after they are committed; anniversaries come from the timer.
One record per (community, kind, ref) makes each idempotent; rate limits (per member, per group and
hour) and removed or inactive members turn a congratulation into a skipped record with the reason.
"""

from __future__ import annotations

import string
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import InvalidActivity, completed, get_community, zone_of
from engagement.activities.schemas import CelebrationSettingsBody
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.models import Celebration, CelebrationSettings, GroupMember, MemberCopy
from qunzhu_common.events.contracts.chat import ChatActionRequested, mention_token
from qunzhu_common.events.contracts.engagement import (
    CelebrationPosted,
    CheckinChallengeCompleted,
    LevelReached,
    ScholarshipAwarded,
)
from qunzhu_common.inbox import Event
from qunzhu_common.timeutil import utcnow

DEFAULT_TEMPLATES = {
    "level": "🎉 恭喜 {name} 升到 L{level}！",
    "challenge": "🏅 恭喜 {name} 完成「{title}」，共打卡 {days} 天！",
    "scholarship": "🎓 恭喜 {name} 获得「{title}」奖学金（第 {rank} 名）！",
    "anniversary": "🎂 {name} 加入社群 {years} 周年啦，感谢一路同行！",
}
PLACEHOLDERS = {"name", "level", "title", "days", "rank", "years"}


def check_templates(templates: dict[str, str]) -> None:
    for kind, template in templates.items():
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as exc:
            raise InvalidActivity(f"template for {kind}: {exc}") from None
        unknown = fields - PLACEHOLDERS
        if unknown:
            raise InvalidActivity(f"template for {kind} uses unknown placeholders {sorted(unknown)}; "
                                  f"known: {sorted(PLACEHOLDERS)}")
        if len(template) > 500:
            raise InvalidActivity(f"template for {kind} is longer than 500 characters")


async def settings_of(session: AsyncSession, community_id: str) -> CelebrationSettingsBody:
    row = await session.get(CelebrationSettings, community_id)
    if row is None:
        return CelebrationSettingsBody()
    return CelebrationSettingsBody(enabled=row.enabled, kinds=row.kinds, templates=row.templates,  # type: ignore[arg-type]
                                   member_interval_s=row.member_interval_s, group_hourly_limit=row.group_hourly_limit)


async def save_settings(session: AsyncSession, *, community_id: str, body: CelebrationSettingsBody
                        ) -> CelebrationSettingsBody:
    await get_community(session, community_id)
    check_templates(dict(body.templates))
    row = await session.get(CelebrationSettings, community_id)
    values = body.model_dump()
    if row is None:
        session.add(CelebrationSettings(community_id=community_id, changed_at=utcnow(), **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.changed_at = utcnow()
    await session.flush()
    return body


async def _group_of(session: AsyncSession, community_id: str, person_id: str) -> str | None:
    return await session.scalar(select(GroupMember.group_id).where(
        GroupMember.community_id == community_id, GroupMember.person_id == person_id, GroupMember.left_at.is_(None),
    ).order_by(GroupMember.joined_at.desc()).limit(1))


async def _skip_reason(session: AsyncSession, *, conf: CelebrationSettingsBody, member: MemberCopy | None,
                       group_id: str | None, at: datetime) -> str:
    if member is None or member.status != "active":
        return f"member is {member.status if member else 'unknown'}, not active"
    if group_id is None:
        return "member is in no chat group"
    if conf.member_interval_s:
        recent = await session.scalar(select(func.count()).select_from(Celebration).where(
            Celebration.community_id == member.community_id, Celebration.person_id == member.person_id,
            Celebration.status == "posted", Celebration.created_at > at - timedelta(seconds=conf.member_interval_s)))
        if recent:
            return f"rate limit: one congratulation per member every {conf.member_interval_s} s"
    in_hour = await session.scalar(select(func.count()).select_from(Celebration).where(
        Celebration.community_id == member.community_id, Celebration.group_id == group_id,
        Celebration.status == "posted", Celebration.created_at > at - timedelta(hours=1)))
    if (in_hour or 0) >= conf.group_hourly_limit:
        return f"rate limit: {conf.group_hourly_limit} congratulations per group and hour"
    return ""


async def celebrate(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, person_id: str, kind: str, ref: str,
    at: datetime, values: dict[str, Any],
) -> Celebration | None:
    """Congratulate once per (kind, ref), or record why not; None when the kind is switched off."""
    conf = await settings_of(session, community_id)
    if not conf.enabled or kind not in conf.kinds:
        return None
    member = await session.get(MemberCopy, (community_id, person_id))
    group_id = await _group_of(session, community_id, person_id)
    reason = await _skip_reason(session, conf=conf, member=member, group_id=group_id, at=at)
    name = (member.display_name if member and member.display_name else person_id)
    template = conf.templates.get(kind) or DEFAULT_TEMPLATES[kind]  # type: ignore[call-overload]
    text = template.format_map({**{p: "" for p in PLACEHOLDERS}, **values, "name": name})
    # The group sees the name the platform last reported for them there, as a mention (gateway-rendered).
    chat_text = template.format_map({**{p: "" for p in PLACEHOLDERS}, **values, "name": mention_token(person_id)})
    inserted = await insert_ignore(session, Celebration, {
        "community_id": community_id, "person_id": person_id, "kind": kind, "ref": ref[:100],
        "group_id": group_id or "", "text": text[:1000], "status": "skipped" if reason else "posted",
        "skip_reason": reason, "created_at": at})
    row = (await session.execute(select(Celebration).where(
        Celebration.community_id == community_id, Celebration.kind == kind, Celebration.ref == ref[:100]
    ))).scalar_one()
    if not inserted or reason:
        return row
    assert group_id is not None
    await ctx.emit(session, type="chat.action.requested", community_id=community_id, data=ChatActionRequested(
        action_id=f"celebration:{community_id}:{kind}:{ref}"[:200], action="send_message", group_id=group_id,
        text=chat_text, member_id=person_id, requested_by="engagement"))
    await ctx.emit(session, type="celebration.posted", community_id=community_id, data=CelebrationPosted(
        community_id=community_id, person_id=person_id, kind=kind, ref=ref[:100], group_id=group_id,  # type: ignore[arg-type]
        posted_at=at))
    completed(session, ctx, "celebration")
    return row


async def on_level_reached(session: AsyncSession, event: Event[LevelReached], ctx: EngagementContext) -> None:
    d = event.data
    await celebrate(session, ctx, community_id=event.community_id, person_id=d.person_id, kind="level",
                    ref=f"{d.person_id}:L{d.level}", at=d.reached_at, values={"level": d.level})


async def on_challenge_completed(session: AsyncSession, event: Event[CheckinChallengeCompleted],
                                 ctx: EngagementContext) -> None:
    d = event.data
    await celebrate(session, ctx, community_id=event.community_id, person_id=d.person_id, kind="challenge",
                    ref=f"{d.challenge_id}:{d.person_id}", at=d.completed_at,
                    values={"title": d.challenge_title, "days": d.days_checked_in})


async def on_scholarship_awarded(session: AsyncSession, event: Event[ScholarshipAwarded], ctx: EngagementContext
                                 ) -> None:
    d = event.data
    await celebrate(session, ctx, community_id=event.community_id, person_id=d.person_id, kind="scholarship",
                    ref=f"{d.assignment_id}:{d.person_id}", at=d.awarded_at,
                    values={"title": d.assignment_title, "rank": d.rank})


def anniversary_on(joined: date, today: date) -> int:
    """Full years on `today` if it is the anniversary of `joined` (29 Feb counts on 28 Feb), else 0."""
    years = today.year - joined.year
    if years < 1:
        return 0
    if (joined.month, joined.day) == (today.month, today.day):
        return years
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    if (joined.month, joined.day) == (2, 29) and not leap and (today.month, today.day) == (2, 28):
        return years
    return 0


async def anniversaries(session: AsyncSession, ctx: EngagementContext, *, now: datetime) -> int:
    """Congratulate active members on the local day their membership turns N years old (once each)."""
    posted = 0
    rows = (await session.execute(select(MemberCopy).where(
        MemberCopy.status == "active", MemberCopy.joined_at.is_not(None),
        MemberCopy.joined_at <= now - timedelta(days=364)))).scalars().all()
    zones: dict[str, Any] = {}
    for member in rows:
        if member.community_id not in zones:
            zones[member.community_id] = zone_of(await get_community(session, member.community_id))
        zone = zones[member.community_id]
        assert member.joined_at is not None
        years = anniversary_on(member.joined_at.astimezone(zone).date(), now.astimezone(zone).date())
        if years:
            row = await celebrate(session, ctx, community_id=member.community_id, person_id=member.person_id,
                                  kind="anniversary", ref=f"{member.person_id}:{years}y", at=now,
                                  values={"years": years})
            posted += bool(row is not None and row.status == "posted" and row.created_at == now)
    return posted


HANDLERS = {
    "level.reached": on_level_reached,
    "checkin_challenge.completed": on_challenge_completed,
    "scholarship.awarded": on_scholarship_awarded,
}
