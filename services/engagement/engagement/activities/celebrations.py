"""Celebrations (归属感): a congratulation in the member's group when they reach a level, complete a
check-in challenge, win a scholarship, or on their membership anniversary.

Engagement reacts to its own events (level.reached, checkin_challenge.completed, scholarship.awarded)
as a consumer of engagement.events.v1, after they are committed; anniversaries come from the timer.
One record per (community, kind, ref) makes each idempotent; rate limits (per member, per group and
hour) and removed or inactive members turn a congratulation into a skipped record with the reason.
The congratulations of a consumed batch (a burst of level-ups) are decided together before its commit,
with a handful of statements, exactly as one at a time would decide them (`celebrate_many`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import InvalidActivity, completed, get_community, zone_of
from engagement.activities.schemas import CelebrationSettingsBody
from engagement.context import EngagementContext
from engagement.dbutil import keys_in
from engagement.models import Celebration, CelebrationSettings, GroupMember, MemberCopy
from qunzhu_common.context import current_correlation_id
from qunzhu_common.db.bulk import bulk_insert
from qunzhu_common.events.contracts.chat import ChatActionRequested, mention_token
from qunzhu_common.events.contracts.engagement import (
    CelebrationPosted,
    CheckinChallengeCompleted,
    LevelReached,
    ScholarshipAwarded,
)
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.inbox import Event
from qunzhu_common.timeutil import utcnow
from qunzhu_common.unit_of_work import defer, deferrable, take_deferred

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


@dataclass(frozen=True)
class Wish:
    """One congratulation to decide: posted or skipped (with the reason), once per (community, kind, ref)."""

    community_id: str
    person_id: str
    kind: str
    ref: str
    at: datetime
    values: dict[str, Any]
    correlation_id: str | None = None  # of the event that brought it: its posts belong to that conversation


_celebration = Celebration.__table__  # type: ignore[attr-defined]
_QUEUE = "engagement.celebrations"  # session.info key of the wishes queued for the end of the transaction


async def celebrate(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, person_id: str, kind: str, ref: str,
    at: datetime, values: dict[str, Any],
) -> Celebration | None:
    """Congratulate once per (kind, ref), or record why not; None when the kind is switched off."""
    await take_queued(session)  # wishes queued earlier in this transaction come first
    if not await celebrate_many(session, ctx, [Wish(community_id, person_id, kind, ref, at, values)]):
        return None
    return (await session.execute(select(Celebration).where(
        Celebration.community_id == community_id, Celebration.kind == kind, Celebration.ref == ref[:100]
    ))).scalar_one()


async def queue_celebration(session: AsyncSession, ctx: EngagementContext, wish: Wish) -> None:
    """Decide the wish before this transaction commits, with the rest of a consumed batch (a burst of
    level-ups is decided with a handful of statements, not seven per member); at once elsewhere."""
    if not deferrable(session):
        await celebrate_many(session, ctx, [wish])
        return
    session.info.setdefault(_QUEUE, []).append(replace(wish, correlation_id=current_correlation_id()))

    async def decide(session: AsyncSession) -> None:
        await celebrate_many(session, ctx, session.info.pop(_QUEUE, []))

    defer(session, _QUEUE, decide)


async def take_queued(session: AsyncSession) -> None:
    work = take_deferred(session, _QUEUE)
    if work is not None:
        await work(session)


def _chunks(values: list, size: int = 500) -> list[list]:
    return [values[i:i + size] for i in range(0, len(values), size)]


async def celebrate_many(session: AsyncSession, ctx: EngagementContext, wishes: list[Wish]) -> int:
    """Decide wishes in order, exactly as one at a time would: the switched-off kinds are dropped, a
    (community, kind, ref) already recorded (or earlier in the list) is left alone, the rest is recorded
    posted or skipped — rate limits count what was posted before, this list's earlier posts included.
    Returns how many wishes were not switched off."""
    confs = {cid: await settings_of(session, cid) for cid in sorted({w.community_id for w in wishes})}
    wishes = [w for w in wishes if confs[w.community_id].enabled and w.kind in confs[w.community_id].kinds]
    if not wishes:
        return 0
    people = sorted({(w.community_id, w.person_id) for w in wishes})
    members: dict[tuple[str, str], MemberCopy] = {}
    groups: dict[tuple[str, str], str] = {}
    for chunk in _chunks(people):
        key = keys_in(session, (MemberCopy.community_id, MemberCopy.person_id), chunk)
        for member in (await session.execute(select(MemberCopy).where(key))).scalars():
            members[(member.community_id, member.person_id)] = member
        rows = await session.execute(
            select(GroupMember.community_id, GroupMember.person_id, GroupMember.group_id)
            .where(keys_in(session, (GroupMember.community_id, GroupMember.person_id), chunk),
                   GroupMember.left_at.is_(None))
            .order_by(GroupMember.joined_at.desc()))
        for cid, pid, gid in rows:
            groups.setdefault((cid, pid), gid)  # the group joined last
    refs = sorted({(w.community_id, w.kind, w.ref[:100]) for w in wishes})
    recorded: set[tuple[str, str, str]] = set()
    for chunk in _chunks(refs):
        rows = await session.execute(select(Celebration.community_id, Celebration.kind, Celebration.ref).where(
            keys_in(session, (Celebration.community_id, Celebration.kind, Celebration.ref), chunk)))
        recorded.update((c, k, r) for c, k, r in rows)
    # What was posted before: per member within their community's interval, per group within the hour.
    since = min(w.at for w in wishes) - timedelta(seconds=max(3600, *(c.member_interval_s for c in confs.values())))
    by_member: dict[tuple[str, str], list[datetime]] = {}
    by_group: dict[tuple[str, str], list[datetime]] = {}
    for chunk in _chunks(sorted({w.community_id for w in wishes})):
        rows = await session.execute(
            select(Celebration.community_id, Celebration.person_id, Celebration.group_id, Celebration.created_at)
            .where(Celebration.community_id.in_(chunk), Celebration.status == "posted", Celebration.created_at > since))
        for cid, pid, gid, created_at in rows:
            by_member.setdefault((cid, pid), []).append(created_at)
            by_group.setdefault((cid, gid), []).append(created_at)

    rows_out: list[dict[str, Any]] = []
    posts: list[tuple[Wish, str, str]] = []
    for wish in wishes:
        ref = wish.ref[:100]
        if (wish.community_id, wish.kind, ref) in recorded:
            continue
        recorded.add((wish.community_id, wish.kind, ref))
        conf, member = confs[wish.community_id], members.get((wish.community_id, wish.person_id))
        group_id = groups.get((wish.community_id, wish.person_id))
        reason = _skip_reason(conf=conf, member=member, group_id=group_id, at=wish.at,
                              member_posts=by_member.get((wish.community_id, wish.person_id), []),
                              group_posts=by_group.get((wish.community_id, group_id or ""), []))
        name = (member.display_name if member and member.display_name else wish.person_id)
        template = conf.templates.get(wish.kind) or DEFAULT_TEMPLATES[wish.kind]  # type: ignore[call-overload]
        text = template.format_map({**{p: "" for p in PLACEHOLDERS}, **wish.values, "name": name})
        rows_out.append({"community_id": wish.community_id, "person_id": wish.person_id, "kind": wish.kind,
                         "ref": ref, "group_id": group_id or "", "text": text[:1000],
                         "status": "skipped" if reason else "posted", "skip_reason": reason, "created_at": wish.at})
        if not reason:
            assert group_id is not None
            by_member.setdefault((wish.community_id, wish.person_id), []).append(wish.at)
            by_group.setdefault((wish.community_id, group_id), []).append(wish.at)
            # The group sees the name the platform last reported for them there, as a mention (gateway-rendered).
            posts.append((wish, group_id, template.format_map(
                {**{p: "" for p in PLACEHOLDERS}, **wish.values, "name": mention_token(wish.person_id)})))
    inserted = await _insert_new(session, rows_out)
    envelopes: list[Envelope] = []
    for wish, group_id, chat_text in posts:
        if (wish.community_id, wish.kind, wish.ref[:100]) not in inserted:
            continue  # another transaction recorded it meanwhile: theirs to announce
        envelopes.append(_envelope(ctx, wish, "chat.action.requested", ChatActionRequested(
            action_id=f"celebration:{wish.community_id}:{wish.kind}:{wish.ref}"[:200], action="send_message",
            group_id=group_id, text=chat_text, member_id=wish.person_id, requested_by="engagement")))
        envelopes.append(_envelope(ctx, wish, "celebration.posted", CelebrationPosted(
            community_id=wish.community_id, person_id=wish.person_id, kind=wish.kind,  # type: ignore[arg-type]
            ref=wish.ref[:100], group_id=group_id, posted_at=wish.at)))
    await ctx.stage(session, [e for e in envelopes if e is not None])
    completed(session, ctx, "celebration", len(envelopes) // 2)
    return len(wishes)


def _envelope(ctx: EngagementContext, wish: Wish, type_: str, data: Any) -> Envelope | None:  # noqa: ANN401
    if ctx.outbox is None:
        return None
    return new_envelope(type=type_, data=data, source=ctx.outbox.source, community_id=wish.community_id,
                        correlation_id=wish.correlation_id or current_correlation_id())


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Insert the rows in one statement, skipping those recorded meanwhile; the keys of those inserted."""
    if not rows:
        return set()
    keys = ["community_id", "kind", "ref"]
    if session.bind.dialect.name == "postgresql":
        stmt = postgresql.insert(_celebration).on_conflict_do_nothing().returning(*(_celebration.c[k] for k in keys))
        result = await bulk_insert(session, _celebration, rows, fallback=stmt, pg_tail="ON CONFLICT DO NOTHING",
                                   returning=keys)
        return {(c, k, r) for c, k, r in result}
    stmt = sqlite.insert(_celebration).values(rows).on_conflict_do_nothing().returning(
        *(_celebration.c[k] for k in keys))
    return {(c, k, r) for c, k, r in await session.execute(stmt)}


def _skip_reason(*, conf: CelebrationSettingsBody, member: MemberCopy | None, group_id: str | None, at: datetime,
                 member_posts: list[datetime], group_posts: list[datetime]) -> str:
    if member is None or member.status != "active":
        return f"member is {member.status if member else 'unknown'}, not active"
    if group_id is None:
        return "member is in no chat group"
    if conf.member_interval_s:
        if any(posted > at - timedelta(seconds=conf.member_interval_s) for posted in member_posts):
            return f"rate limit: one congratulation per member every {conf.member_interval_s} s"
    hour_ago = at - timedelta(hours=1)
    if sum(1 for posted in group_posts if posted > hour_ago) >= conf.group_hourly_limit:
        return f"rate limit: {conf.group_hourly_limit} congratulations per group and hour"
    return ""


async def on_level_reached(session: AsyncSession, event: Event[LevelReached], ctx: EngagementContext) -> None:
    d = event.data
    await queue_celebration(session, ctx, Wish(event.community_id, d.person_id, "level", f"{d.person_id}:L{d.level}",
                                               d.reached_at, {"level": d.level}))


async def on_challenge_completed(session: AsyncSession, event: Event[CheckinChallengeCompleted],
                                 ctx: EngagementContext) -> None:
    d = event.data
    await queue_celebration(session, ctx, Wish(
        event.community_id, d.person_id, "challenge", f"{d.challenge_id}:{d.person_id}", d.completed_at,
        {"title": d.challenge_title, "days": d.days_checked_in}))


async def on_scholarship_awarded(session: AsyncSession, event: Event[ScholarshipAwarded], ctx: EngagementContext
                                 ) -> None:
    d = event.data
    await queue_celebration(session, ctx, Wish(
        event.community_id, d.person_id, "scholarship", f"{d.assignment_id}:{d.person_id}", d.awarded_at,
        {"title": d.assignment_title, "rank": d.rank}))


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
