"""Scoring: activities → the classifier's verdict → caps and cooldown → ledger entries.

Activities are scored in batches, in a fixed order (`scored_seq`), which is what makes replay
reproduce the live ledger exactly. Totals do not depend on that order: caps are applied partially
(the last entry fills the cap exactly) and the cooldown uses fixed time slots, so the points of a
member's day depend only on which activities happened, not on the order they arrived in.

A batch is whatever one transaction holds: the chat events of one consumed partition batch (queued
by the handlers, scored before the commit), one API call's activity, a member's pending activities,
or a chunk of replayed history. Its earlier history is read once (scoring/prior.py), its verdicts are
decided in memory, and its writes are multi-row statements (scoring/ledger.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.dbutil import keys_in
from engagement.locks import lock_member
from engagement.models import Activity, CommunityCopy, MemberCopy, NewActivity
from engagement.scoring.classify import classify_message
from engagement.scoring.ledger import Award, MemberDay, write_awards
from engagement.scoring.prior import PriorActivity, read_prior, slot_of
from engagement.scoring.rules import ScoringRules
from engagement.scoring.ruleset import in_force, rules_of_version, versions_of
from qunzhu_common.context import current_correlation_id
from qunzhu_common.db.bulk import bulk_insert, next_ids
from qunzhu_common.outbox import run_after_commit
from qunzhu_common.unit_of_work import defer, deferrable, take_deferred

# Activity that counts as "effective" for lurker detection, whatever points it brings.
EFFECTIVE_TYPES = frozenset({
    "checkin", "homework_submitted", "question_asked", "question_answered", "effective_message",
    "share_with_intro", "signup_chain", "session_attended", "post_published", "poll_vote", "survey_answered",
    "meetup_attended",
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
    "lottery_entry": "抽奖 lottery entry",
    "poll_vote": "投票 vote",
    "survey_answered": "问卷 survey answered",
    "meetup_attended": "线下活动 meetup attended",
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
    "lottery_entry": "lottery_entry",
    "poll_vote": "poll_vote",
    "survey_answered": "survey_answered",
    "meetup_attended": "meetup_attended",
}

# Stored rows (pending, replayed) or new ones; the scorer only reads and sets their fields.
AnyActivity = Activity | NewActivity

_QUEUE = "engagement.scoring"  # session.info key of the activities queued for the end of the transaction


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


async def locked_communities(session: AsyncSession, community_ids: list[str]) -> list[CommunityCopy]:
    """`locked_community` for several, with one statement: locked in id order (the one lock order)."""
    if len(community_ids) == 1:
        found = await locked_community(session, community_ids[0])
        return [found] if found is not None else []
    return list((await session.execute(
        select(CommunityCopy).where(keys_in(session, (CommunityCopy.id,), [(c,) for c in community_ids]))
        .order_by(CommunityCopy.id).with_for_update(of=CommunityCopy).execution_options(populate_existing=True)
    )).scalars())


async def member_known(session: AsyncSession, *, community_id: str, person_id: str) -> bool:
    return await session.get(MemberCopy, (community_id, person_id)) is not None


# --------------------------------------------------------------------------------------------------
# entry points


async def queue_activity(session: AsyncSession, ctx: EngagementContext, *, activity: AnyActivity) -> None:
    """Keep and score the activity before this transaction commits, together with the rest of the batch.

    In a consumer's transaction the activity waits for the end of the batch; anywhere else it is
    recorded at once (same result, one activity per batch).
    """
    if not deferrable(session):
        await record_activities(session, ctx, activities=[activity])
        return
    # The events it leads to carry the correlation id of the event that brought it, not the batch's.
    queued: list[tuple[AnyActivity, str]] = session.info.setdefault(_QUEUE, [])
    queued.append((activity, current_correlation_id()))

    async def score_queued(session: AsyncSession) -> None:
        batch: list[tuple[AnyActivity, str]] = session.info.pop(_QUEUE, [])
        await record_activities(session, ctx, activities=[a for a, _ in batch],
                                correlation_ids=[c for _, c in batch])

    defer(session, _QUEUE, score_queued)


async def score_queued_now(session: AsyncSession) -> None:
    """Score what handlers queued in this transaction so far (before reading scores in it)."""
    work = take_deferred(session, _QUEUE)
    if work is not None:
        await work(session)


async def record_activity(session: AsyncSession, ctx: EngagementContext, *, activity: AnyActivity) -> AnyActivity:
    """Keep the activity; score it now if its community and member are known, else later."""
    await record_activities(session, ctx, activities=[activity])
    return activity


async def record_activities(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activities: list[AnyActivity],
    correlation_ids: list[str] | None = None,
) -> None:
    """Keep new activities (in order); score those whose community and member are known, keep the rest pending."""
    await score_queued_now(session)  # what was queued before these comes first
    if not activities:
        return
    correlation_of = dict(zip(map(id, activities), correlation_ids or [], strict=False))
    by_community: dict[str, list[Activity]] = {}
    for activity in activities:
        by_community.setdefault(activity.community_id, []).append(activity)
    # One lock order for every transaction: no deadlock between batches touching the same communities.
    communities: dict[str, CommunityCopy | None] = dict.fromkeys(sorted(by_community))
    communities.update((c.id, c) for c in await locked_communities(session, list(communities)))
    for community_id, community in communities.items():
        if community is None:
            # Not known yet: serialise with community.created (which makes the owner a member), then look again.
            for person_id in sorted({a.person_id for a in by_community[community_id]}):
                await lock_member(session, community_id=community_id, person_id=person_id)
            communities[community_id] = await locked_community(session, community_id)
    people = sorted({(a.community_id, a.person_id) for a in activities if communities[a.community_id] is not None})
    known: set[tuple[str, str]] = set()
    if people:
        rows = await session.execute(select(MemberCopy.community_id, MemberCopy.person_id).where(
            keys_in(session, (MemberCopy.community_id, MemberCopy.person_id), people)))
        known.update((c, p) for c, p in rows)
    scorable = [a for a in activities if (a.community_id, a.person_id) in known]
    pending = [a for a in activities if (a.community_id, a.person_id) not in known]
    if pending:
        await _insert_activities(session, pending)
        if ctx.metrics is not None:
            run_after_commit(session, _count_pending(ctx, len(pending)))
    if scorable:
        await score_activities(
            session, ctx, activities=scorable,
            communities={cid: c for cid, c in communities.items() if c is not None},
            correlation_ids=[correlation_of.get(id(a)) for a in scorable] if correlation_of else None,
        )


async def score_pending(session: AsyncSession, ctx: EngagementContext, *, community_id: str, person_id: str) -> int:
    """Score what a member did before engagement knew them, in arrival order."""
    await score_queued_now(session)
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
    if pending:
        await score_activities(session, ctx, activities=list(pending), communities={community_id: community})
    return len(pending)


async def score_activity(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activity: AnyActivity,
    community: CommunityCopy,
    seq: int | None = None,
    same_rules: bool = False,
) -> None:
    """Score one activity (a batch of one); see `score_activities`."""
    await score_activities(session, ctx, activities=[activity], communities={community.id: community},
                           seqs=[seq] if seq is not None else None, same_rules=same_rules)


# --------------------------------------------------------------------------------------------------
# the batch scorer


async def score_activities(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activities: list[AnyActivity],
    communities: dict[str, CommunityCopy],
    seqs: list[int | None] | None = None,
    same_rules: bool = False,
    correlation_ids: list[str | None] | None = None,
) -> None:
    """Score activities in list order under the rules in force when each happened, and write the results.

    `activities` are new (no id yet: inserted here) or stored ones (pending, replayed, recomputed:
    updated through the session). `communities` are locked rows. Replay passes the original `seqs`
    and `same_rules`: each activity is scored again exactly as it was live, under the version then in
    force (a version added later with an earlier start only applies through a recompute).
    """
    keyed: list[tuple[AnyActivity, MemberDay]] = []
    rules_of: list[tuple[int, ScoringRules]] = []
    versions: dict[tuple[str, int], ScoringRules] = {}
    in_force_of: dict[str, list] = {}  # community → its rule versions, asked once per batch
    zones: dict[str, ZoneInfo] = {}
    for index, activity in enumerate(activities):
        community = communities[activity.community_id]
        if same_rules and activity.rule_set_version is not None:
            version = activity.rule_set_version
            rules = versions.get((activity.community_id, version)) or await rules_of_version(
                session, community_id=activity.community_id, version=version)
            versions[(activity.community_id, version)] = rules
        else:
            if activity.community_id not in in_force_of:
                in_force_of[activity.community_id] = await versions_of(session, activity.community_id)
            version, rules = in_force(in_force_of[activity.community_id], activity.occurred_at)
        seq = seqs[index] if seqs is not None else None
        if seq is None:
            community.scored_count += 1
            seq = community.scored_count
        activity.scored_seq = seq
        activity.rule_set_version = version
        zone = zones.get(community.timezone) or zones.setdefault(community.timezone, ZoneInfo(community.timezone))
        activity.day = activity.occurred_at.astimezone(zone).date()
        keyed.append((activity, (activity.community_id, activity.person_id, activity.day)))
        rules_of.append((version, rules))

    with session.no_autoflush:  # stored rows of the batch must not be written half-decided by the reads
        prior = await read_prior(session, batch=keyed, max_seq=max(a.scored_seq or 0 for a, _ in keyed) + 1)
    awards: list[Award] = []
    correlations = correlation_ids or [None] * len(keyed)
    for (activity, key), (version, rules), correlation_id in zip(keyed, rules_of, correlations, strict=True):
        verdict = _verdict(prior, activity=activity, key=key, rules=rules)
        awarded, reason = 0, verdict.reason
        if verdict.rule_type is not None and verdict.points > 0:
            awarded, reason = _limit(prior, activity=activity, key=key, rules=rules, verdict=verdict)
        activity.status = "scored"
        activity.rule_type = verdict.rule_type
        activity.strike = verdict.strike
        activity.points = awarded
        activity.reason = reason[:300]
        prior.record(activity, key)
        if awarded:
            prior.award(key, verdict.rule_type or "", activity.occurred_at, awarded)
        effective = verdict.rule_type in EFFECTIVE_TYPES
        awards.append(Award(
            activity=activity, key=key, rule_type=verdict.rule_type or "", version=version, rules=rules,
            points=awarded, reason=f"{LABELS.get(verdict.rule_type or '', verdict.rule_type)}: {reason}"[:300],
            effective_at=activity.occurred_at if effective else None, correlation_id=correlation_id,
        ))

    await _insert_activities(session, [a for a, _ in keyed if a.id is None])
    await session.flush()  # stored rows of the batch and the communities' sequence counters
    await write_awards(session, ctx, awards=awards)
    if ctx.live and ctx.hooks:
        from engagement.hooks import after_scoring  # the sub-domains that react to scored activities

        await after_scoring(session, ctx, awards=awards)


def _count_pending(ctx: EngagementContext, n: int):  # noqa: ANN202 - an after-commit hook
    def count() -> None:
        assert ctx.metrics is not None
        ctx.metrics.activities_pending.inc(n)

    return count


_ACTIVITY = Activity.__table__  # type: ignore[attr-defined]
_ACTIVITY_COLUMNS = tuple(c.name for c in _ACTIVITY.columns if c.name != "id")


async def _insert_activities(session: AsyncSession, activities: list[AnyActivity]) -> None:
    """Insert new activities with one multi-row statement and give each its id."""
    if not activities:
        return
    ids = await next_ids(session, _ACTIVITY, len(activities))
    if ids is None:  # SQLite: the database numbers them, RETURNING in parameter order
        rows = [{name: getattr(a, name) for name in _ACTIVITY_COLUMNS} for a in activities]
        result = await session.execute(insert(_ACTIVITY).returning(_ACTIVITY.c.id, sort_by_parameter_order=True), rows)
        ids = list(result.scalars().all())
    else:
        rows = [{"id": id_, **{name: getattr(a, name) for name in _ACTIVITY_COLUMNS}} for a, id_ in zip(
            activities, ids, strict=True)]
        await bulk_insert(session, _ACTIVITY, rows, fallback=insert(_ACTIVITY))
    for activity, id_ in zip(activities, ids, strict=True):
        activity.id = id_


# --------------------------------------------------------------------------------------------------
# verdicts (pure: everything about earlier activity comes from `prior`)


def _verdict(prior: PriorActivity, *, activity: AnyActivity, key: MemberDay, rules: ScoringRules) -> Verdict:
    seq = activity.scored_seq or 0
    if activity.kind == "message":
        return _message_verdict(prior, activity=activity, key=key, rules=rules)
    if activity.kind == "homework_grade":
        grade = str(activity.extra.get("grade", ""))
        bonus = rules.grade_bonus.get(grade, 0) + rules.points_for("homework_grade_bonus")
        return Verdict("homework_grade_bonus", bonus, f"graded {grade}/5")
    if activity.kind == "homework" and activity.reply_to_message_id:
        thread = (activity.community_id, activity.person_id, activity.reply_to_message_id)
        if prior.submitted_before(thread, seq):
            return Verdict("homework_submitted", 0, "resubmission: this assignment was already scored")
    if activity.kind == "reaction" and activity.person_id == activity.other_id:
        return Verdict(None, 0, "reacted to their own message")
    rule_type = _KIND_RULES.get(activity.kind)
    if rule_type is None:
        return Verdict(None, 0, f"{activity.kind} is not scored")
    return Verdict(rule_type, rules.points_for(rule_type), LABELS[rule_type])


def _message_verdict(prior: PriorActivity, *, activity: AnyActivity, key: MemberDay, rules: ScoringRules) -> Verdict:
    seq = activity.scored_seq or 0
    repeated = bool(activity.text_hash) and prior.repeated(key, activity.text_hash, seq)
    c = classify_message(
        rules, text=activity.text, links=activity.links, media_kind=activity.media_kind, repeated=repeated
    )
    if c.rule_type == "effective_message" and activity.reply_to_message_id:
        asker = prior.askers.get((activity.community_id, activity.reply_to_message_id))
        thread = (activity.community_id, activity.person_id, activity.reply_to_message_id)
        if asker is not None and asker != activity.person_id and not prior.answered_before(thread, seq):
            return Verdict("question_answered", rules.points_for("question_answered"), "answered a question")
    return Verdict(c.rule_type, rules.points_for(c.rule_type), c.reason, c.strike)


def _limit(
    prior: PriorActivity, *, activity: AnyActivity, key: MemberDay, rules: ScoringRules, verdict: Verdict
) -> tuple[int, str]:
    """Apply the daily cap and (for messages) the cooldown slot; returns (points, reason)."""
    rule_type = verdict.rule_type or ""
    cap = rules.cap_for(rule_type)
    cooldown = rules.cooldown_s if rule_type == "effective_message" else 0
    if cap is None and not cooldown:
        return verdict.points, f"+{verdict.points}"
    if cooldown:
        begin, end = slot_of(activity.occurred_at, cooldown)
        if prior.used_in_slot(key, rule_type, begin, end) > 0:
            return 0, f"0: a message was already scored in this {cooldown} s slot (cooldown)"
    if cap is None:
        return verdict.points, f"+{verdict.points}"
    room = max(0, cap - prior.used(key, rule_type))
    if room <= 0:
        return 0, f"0: daily cap of {cap} reached"
    if room < verdict.points:
        return room, f"+{room} of {verdict.points}: daily cap of {cap}"
    return verdict.points, f"+{verdict.points}"
