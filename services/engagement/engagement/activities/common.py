"""What every activity shares: errors, eligibility, points through the scoring engine, events, bot posts.

Points: a member's participation becomes an activity scored by the scoring engine like any check-in
or homework, under its own rule type (scoring/rules.py: `lottery_entry`, `poll_vote`,
`survey_answered`, `signup_chain`, `meetup_attended`), so the ledger entry names its rule
(`poll_vote@v3`), operators set the points per activity in the community's scoring rules, and replay
rebuilds it. The source event id is derived from (activity, member), so one member's participation is
scored once however often it arrives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.errors import CommunityNotFound
from engagement.models import Activity, CommunityCopy, MemberCopy, MemberScore
from engagement.scoring.engine import record_activity, score_queued_now
from qunzhu_common.errors import Conflict, InvalidInput
from qunzhu_common.events.contracts.chat import ChatActionRequested
from qunzhu_common.events.contracts.engagement import ActivityParticipated
from qunzhu_common.outbox import count_after_commit
from qunzhu_common.timeutil import utcnow

# activity action → the engine's activity kind (and so its rule type)
POINT_KINDS = {
    "entered": "lottery_entry",
    "voted": "poll_vote",
    "responded": "survey_answered",
    "signed_up": "signup_chain",
    "promoted": "signup_chain",
    "attended": "meetup_attended",
}
ACTIVE_STATUSES = ("active",)


class ActivityClosed(Conflict):
    """Too late (or too early): the reason says when the activity accepts input."""

    slug, title = "activity-closed", "Activity closed"


class NotEligible(InvalidInput):
    slug, title = "not-eligible", "Not eligible"


class InvalidActivity(InvalidInput):
    slug, title = "invalid-activity", "Invalid activity"


class AlreadyDone(Conflict):
    slug, title = "already-done", "Already done"


async def get_community(session: AsyncSession, community_id: str) -> CommunityCopy:
    community = await session.get(CommunityCopy, community_id)
    if community is None:
        raise CommunityNotFound(f"community {community_id} is not known to engagement")
    return community


def zone_of(community: CommunityCopy) -> ZoneInfo:
    return ZoneInfo(community.timezone)


def require_aware(value: datetime | None, name: str) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidActivity(f"{name} must carry a time zone (e.g. 2026-11-28T20:00:00+08:00)")


def check_window(*, what: str, at: datetime, opens_at: datetime | None, closes_at: datetime | None) -> None:
    """Refuse input outside [opens_at, closes_at) with the reason."""
    if opens_at is not None and at < opens_at:
        raise ActivityClosed(f"{what} opens at {opens_at.isoformat()}", opens_at=opens_at.isoformat())
    if closes_at is not None and at >= closes_at:
        raise ActivityClosed(f"{what} closed at {closes_at.isoformat()}", closes_at=closes_at.isoformat())


_OPEN_ROWS = "engagement.activities.open"


async def open_in_transaction(session: AsyncSession, key: str, load: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
    """Rows every chat message is checked against (open lotteries, polls, campaigns), read once per transaction:
    a consumed batch of 500 messages asks once, not 500 times. Rows changed later in the same transaction
    are these same objects (identity map), so callers check their state in memory."""
    cache: dict[str, list[Any]] = session.info.setdefault(_OPEN_ROWS, {})
    if key not in cache:
        cache[key] = await load()
    return cache[key]


def forget_open_rows(session: AsyncSession) -> None:
    """After a rolled-back savepoint: its objects may be expired, read them again."""
    session.info.pop(_OPEN_ROWS, None)


async def member_of(session: AsyncSession, community_id: str, person_id: str) -> MemberCopy | None:
    return await session.get(MemberCopy, (community_id, person_id))


async def require_member(session: AsyncSession, community_id: str, person_id: str) -> MemberCopy:
    member = await member_of(session, community_id, person_id)
    if member is None:
        raise NotEligible(f"{person_id} is not a member of community {community_id}")
    if member.status not in ACTIVE_STATUSES:
        raise NotEligible(f"{person_id} is {member.status}, not an active member")
    return member


async def level_of(session: AsyncSession, community_id: str, person_id: str) -> int:
    await score_queued_now(session)  # earlier messages of this batch count
    level = await session.scalar(select(MemberScore.level).where(
        MemberScore.community_id == community_id, MemberScore.person_id == person_id))
    return int(level or 1)


async def checked_in_on(session: AsyncSession, *, community: CommunityCopy, person_id: str, at: datetime) -> bool:
    """Whether the member checked in on `at`'s local day (in the community's zone)."""
    day = at.astimezone(zone_of(community)).date()
    await score_queued_now(session)  # a check-in earlier in this batch counts
    count = await session.scalar(select(func.count()).select_from(Activity).where(
        Activity.community_id == community.id, Activity.person_id == person_id, Activity.kind == "checkin",
        Activity.status == "scored", Activity.day == day,
    ))
    return bool(count)


def participation_id(activity: str, activity_id: str, person_id: str, kind: str) -> str:
    """One scored activity per (activity, member, rule kind): signing up again or being promoted adds nothing."""
    digest = hashlib.blake2b(f"{activity}\x00{activity_id}\x00{person_id}\x00{kind}".encode(),
                             digest_size=16).hexdigest()
    return f"act:{digest}"


async def participated(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    community_id: str,
    activity: str,
    activity_id: str,
    person_id: str,
    action: str,
    at: datetime,
    group_id: str = "",
    position: int | None = None,
    title: str = "",
    score: bool = True,
) -> None:
    """Announce a participation, count it, and score it when the action earns points (once per member).

    `score=False` when the chat message that carried it is scored already (a `接龙` command is).
    """
    kind = POINT_KINDS.get(action)
    if kind is not None and score:
        source = participation_id(activity, activity_id, person_id, kind)
        seen = await session.scalar(select(Activity.id).where(Activity.source_event_id == source,
                                                              Activity.kind == kind))
        if seen is None:
            await record_activity(session, ctx, activity=Activity(
                community_id=community_id, source_event_id=source, source_type=f"activity.{activity}",
                kind=kind, person_id=person_id, group_id=group_id, occurred_at=at, text=title[:200],
                extra={"activity": activity, "activity_id": activity_id, "action": action}, received_at=utcnow(),
            ))
    if ctx.metrics is not None and action in ("entered", "voted", "responded", "signed_up", "waitlisted"):
        count_after_commit(session, ctx.metrics.activity_participants.labels(activity))
    await ctx.emit(session, type="activity.participated", community_id=community_id, data=ActivityParticipated(
        community_id=community_id, activity=activity, activity_id=activity_id, person_id=person_id,  # type: ignore[arg-type]
        action=action, group_id=group_id or None, position=position, occurred_at=at,  # type: ignore[arg-type]
    ))


def completed(session: AsyncSession, ctx: EngagementContext, activity: str, n: int = 1) -> None:
    if ctx.metrics is not None and n:
        count_after_commit(session, ctx.metrics.activity_completions.labels(activity), n)


async def post(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, group_id: str, text: str, action_id: str,
    announce: bool = False,
) -> None:
    """The bot posts `text` in the group (chat.actions.v1); `action_id` makes the post idempotent."""
    if not group_id:
        return
    await ctx.emit(session, type="chat.action.requested", community_id=community_id, data=ChatActionRequested(
        action_id=action_id[:200], action="announce" if announce else "send_message", group_id=group_id,
        text=text[:20000], requested_by="engagement",
    ))


def local_text(at: datetime, community: CommunityCopy) -> str:
    """A time as members read it: in the community's zone."""
    return at.astimezone(zone_of(community)).strftime("%Y-%m-%d %H:%M")
