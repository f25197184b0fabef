"""Scoring: one activity → the classifier's verdict → caps and cooldown → ledger entries.

Activities are scored one at a time in a fixed order (`scored_seq`), which is what makes replay
reproduce the live ledger exactly. Totals do not depend on that order: caps are applied partially
(the last entry fills the cap exactly) and the cooldown uses fixed time slots, so the points of a
member's day depend only on which activities happened, not on the order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.locks import lock_member
from engagement.models import Activity, CommunityCopy, MemberCopy, PointsLedger
from engagement.scoring.classify import classify_message
from engagement.scoring.ledger import bump_member, write_entry
from engagement.scoring.rules import ScoringRules
from engagement.scoring.ruleset import rules_at, rules_of_version

# Activity that counts as "effective" for lurker detection, whatever points it brings.
EFFECTIVE_TYPES = frozenset({
    "checkin", "homework_submitted", "question_asked", "question_answered", "effective_message",
    "share_with_intro", "signup_chain", "session_attended", "post_published",
})

LABELS = {
    "checkin": "打卡 check-in",
    "homework_submitted": "作业 homework submitted",
    "homework_grade_bonus": "homework grade bonus",
    "question_asked": "question asked",
    "question_answered": "answered a question",
    "effective_message": "effective message",
    "share_with_intro": "share with an introduction",
    "bare_link": "bare link",
    "noise": "noise",
    "signup_chain": "接龙 sign-up",
    "reaction_received": "reaction received",
    "red_packet": "红包 red packet",
    "session_attended": "attended a sharing session",
    "post_published": "published a post",
}

_KIND_RULES = {
    "checkin": "checkin",
    "homework": "homework_submitted",
    "question": "question_asked",
    "signup_chain": "signup_chain",
    "reaction": "reaction_received",
    "red_packet": "red_packet",
    "session_attended": "session_attended",
    "post_published": "post_published",
    "answer": "question_answered",
    "comment": "effective_message",
}


@dataclass(frozen=True)
class Verdict:
    rule_type: str | None  # None: nothing to score (e.g. a reaction to an unknown sender)
    points: int
    reason: str
    strike: str | None = None


def local_day(at: datetime, timezone: str):  # noqa: ANN201 - a date
    return at.astimezone(ZoneInfo(timezone)).date()


async def locked_community(session: AsyncSession, community_id: str) -> CommunityCopy | None:
    """The community row, locked: its activities are scored one transaction at a time (chat, content
    and API writes all come here), so caps hold and `scored_count` hands out each sequence number once."""
    return await session.get(CommunityCopy, community_id, with_for_update=True, populate_existing=True)


async def member_known(session: AsyncSession, *, community_id: str, person_id: str) -> bool:
    return await session.get(MemberCopy, (community_id, person_id)) is not None


async def record_activity(session: AsyncSession, ctx: EngagementContext, *, activity: Activity) -> Activity:
    """Keep the activity; score it now if its community and member are known, else later."""
    community = await locked_community(session, activity.community_id)
    if community is None:
        # Not known yet: serialise with community.created (which makes the owner a member), then look again.
        await lock_member(session, community_id=activity.community_id, person_id=activity.person_id)
        community = await locked_community(session, activity.community_id)
    known = community is not None and await member_known(
        session, community_id=activity.community_id, person_id=activity.person_id
    )
    session.add(activity)
    if known:
        assert community is not None
        await score_activity(session, ctx, activity=activity, community=community)
        return activity
    await session.flush()
    if ctx.metrics is not None:
        ctx.metrics.activities_pending.inc()
    return activity


async def score_pending(session: AsyncSession, ctx: EngagementContext, *, community_id: str, person_id: str) -> int:
    """Score what a member did before engagement knew them, in arrival order."""
    community = await locked_community(session, community_id)
    if community is None:
        return 0
    pending = (
        await session.execute(
            select(Activity)
            .where(Activity.community_id == community_id, Activity.person_id == person_id, Activity.status == "pending")
            .order_by(Activity.id)
        )
    ).scalars().all()
    for activity in pending:
        await score_activity(session, ctx, activity=activity, community=community)
    return len(pending)


async def score_activity(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activity: Activity,
    community: CommunityCopy,
    seq: int | None = None,
    same_rules: bool = False,
) -> None:
    """Score one activity under the rules in force when it happened.

    Replay passes `seq` and `same_rules`: the activity is scored again exactly as it was live, under
    the version then in force (a version added later with an earlier start only applies through a
    recompute).
    """
    # The row is written once, complete, after the verdict (the queries below compare with other rows).
    with session.no_autoflush:
        if same_rules and activity.rule_set_version is not None:
            version = activity.rule_set_version
            rules = await rules_of_version(session, community_id=activity.community_id, version=version)
        else:
            version, rules = await rules_at(session, community_id=activity.community_id, at=activity.occurred_at)
        activity.rule_set_version = version
        if seq is None:
            community.scored_count += 1
            seq = community.scored_count
        activity.scored_seq = seq
        activity.status = "scored"
        activity.day = local_day(activity.occurred_at, community.timezone)

        verdict = await _verdict(session, activity=activity, rules=rules)
        activity.rule_type = verdict.rule_type
        activity.strike = verdict.strike
        awarded, reason = 0, verdict.reason
        if verdict.rule_type is not None and verdict.points > 0:
            awarded, reason = await _limit(session, activity=activity, rules=rules, verdict=verdict)
        activity.points = awarded
        activity.reason = reason[:300]
    await session.flush()
    effective = verdict.rule_type in EFFECTIVE_TYPES
    if awarded:
        await write_entry(
            session, ctx, activity=activity, rule_type=verdict.rule_type or "", version=version, rules=rules,
            points=awarded, reason=f"{LABELS.get(verdict.rule_type or '', verdict.rule_type)}: {reason}"[:300],
            revision=activity.revision, effective_at=activity.occurred_at if effective else None,
        )
    else:
        # Keeps the member's row (and their last effective activity, for lurker detection) current.
        await bump_member(
            session, community_id=activity.community_id, person_id=activity.person_id, points=0,
            effective_at=activity.occurred_at if effective else None,
        )
    if ctx.metrics is not None:
        ctx.metrics.activities_scored.labels(verdict.rule_type or "none").inc()
    if ctx.live and ctx.hooks:
        from engagement.hooks import after_scoring  # the sub-domains that react to a scored activity

        await after_scoring(session, ctx, activity=activity, rules=rules)


async def _verdict(session: AsyncSession, *, activity: Activity, rules: ScoringRules) -> Verdict:
    if activity.kind == "message":
        return await _message_verdict(session, activity=activity, rules=rules)
    if activity.kind == "homework_grade":
        grade = str(activity.extra.get("grade", ""))
        bonus = rules.grade_bonus.get(grade, 0) + rules.points_for("homework_grade_bonus")
        return Verdict("homework_grade_bonus", bonus, f"graded {grade}/5")
    if activity.kind == "homework" and activity.reply_to_message_id:
        if await _submitted_before(session, activity=activity):
            return Verdict("homework_submitted", 0, "resubmission: this assignment was already scored")
    if activity.kind == "reaction" and activity.person_id == activity.other_id:
        return Verdict(None, 0, "reacted to their own message")
    rule_type = _KIND_RULES.get(activity.kind)
    if rule_type is None:
        return Verdict(None, 0, f"{activity.kind} is not scored")
    return Verdict(rule_type, rules.points_for(rule_type), LABELS[rule_type])


async def _message_verdict(session: AsyncSession, *, activity: Activity, rules: ScoringRules) -> Verdict:
    repeated = False
    if activity.text_hash:
        repeated = (
            await session.scalar(
                select(func.count())
                .select_from(Activity)
                .where(
                    Activity.community_id == activity.community_id,
                    Activity.person_id == activity.person_id,
                    Activity.day == activity.day,
                    Activity.text_hash == activity.text_hash,
                    Activity.kind == "message",
                    Activity.status == "scored",
                    Activity.scored_seq < activity.scored_seq,
                )
            )
        ) > 0
    c = classify_message(
        rules, text=activity.text, links=activity.links, media_kind=activity.media_kind, repeated=repeated
    )
    if c.rule_type == "effective_message" and activity.reply_to_message_id:
        if await _answers_a_question(session, activity=activity):
            return Verdict("question_answered", rules.points_for("question_answered"), "answered a question")
    return Verdict(c.rule_type, rules.points_for(c.rule_type), c.reason, c.strike)


async def _submitted_before(session: AsyncSession, *, activity: Activity) -> bool:
    earlier = await session.scalar(
        select(func.count()).select_from(Activity).where(
            Activity.community_id == activity.community_id,
            Activity.person_id == activity.person_id,
            Activity.kind == "homework",
            Activity.reply_to_message_id == activity.reply_to_message_id,
            Activity.status == "scored",
            Activity.scored_seq < activity.scored_seq,
        )
    )
    return bool(earlier)


async def _answers_a_question(session: AsyncSession, *, activity: Activity) -> bool:
    asker = await session.scalar(
        select(Activity.person_id).where(
            Activity.community_id == activity.community_id,
            Activity.message_id == activity.reply_to_message_id,
            Activity.kind == "question",
        ).limit(1)
    )
    if asker is None or asker == activity.person_id:
        return False
    answered_before = await session.scalar(
        select(func.count()).select_from(Activity).where(
            Activity.community_id == activity.community_id,
            Activity.person_id == activity.person_id,
            Activity.reply_to_message_id == activity.reply_to_message_id,
            Activity.rule_type == "question_answered",
            Activity.scored_seq < activity.scored_seq,
        )
    )
    return not answered_before


def _slot(at: datetime, seconds: int) -> tuple[datetime, datetime]:
    epoch = int(at.timestamp())
    start = epoch - epoch % seconds
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + timedelta(seconds=seconds)


async def _limit(
    session: AsyncSession, *, activity: Activity, rules: ScoringRules, verdict: Verdict
) -> tuple[int, str]:
    """Apply the daily cap and (for messages) the cooldown slot; returns (points, reason)."""
    rule_type = verdict.rule_type or ""
    cap = rules.cap_for(rule_type)
    cooldown = rules.cooldown_s if rule_type == "effective_message" else 0
    if cap is None and not cooldown:
        return verdict.points, f"+{verdict.points}"
    where = and_(
        PointsLedger.community_id == activity.community_id,
        PointsLedger.person_id == activity.person_id,
        PointsLedger.day == activity.day,
        PointsLedger.rule_type == rule_type,
    )
    if cooldown:
        begin, end = _slot(activity.occurred_at, cooldown)
        in_slot = case((and_(PointsLedger.occurred_at >= begin, PointsLedger.occurred_at < end), PointsLedger.points),
                       else_=0)
        used, slot_used = (
            await session.execute(
                select(func.coalesce(func.sum(PointsLedger.points), 0), func.coalesce(func.sum(in_slot), 0)).where(
                    where
                )
            )
        ).one()
        if slot_used > 0:
            return 0, f"0: a message was already scored in this {cooldown} s slot (cooldown)"
    else:
        used = await session.scalar(select(func.coalesce(func.sum(PointsLedger.points), 0)).where(where))
    if cap is None:
        return verdict.points, f"+{verdict.points}"
    room = max(0, cap - int(used))
    if room <= 0:
        return 0, f"0: daily cap of {cap} reached"
    if room < verdict.points:
        return room, f"+{room} of {verdict.points}: daily cap of {cap}"
    return verdict.points, f"+{verdict.points}"
