"""What scoring needs to know about a member's earlier activity, read once for a whole batch.

Caps, the cooldown slot, repeat detection, "answered this question already" and homework
resubmissions all depend on what the same member did earlier (same day, same question…). The batch
scorer reads those facts for every member-day of the batch in a few set-based queries, then keeps
them up to date in memory as it scores the batch in order — exactly what the per-activity queries
of the one-at-a-time design saw, without a round trip per activity.

"Earlier" means a smaller `scored_seq`. Rows of the batch itself are excluded from the reads (during
a replay or recompute they are stored with their old verdicts) and enter the view as they are scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.dbutil import for_keys, keys_in
from engagement.models import Activity, PointsLedger

MemberDay = tuple[str, str, date]  # (community_id, person_id, local day)
Thread = tuple[str, str, str]  # (community_id, person_id, reply_to_message_id)

# Large IN lists are split so that no statement exceeds the drivers' bound-parameter limits.
_CHUNK = 500


def _chunks(values: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def slot_of(at: datetime, seconds: int) -> tuple[datetime, datetime]:
    """The fixed cooldown slot holding `at` (slots, not "60 s since the last one", keep totals order-free)."""
    epoch = int(at.timestamp())
    begin = datetime.fromtimestamp(epoch - epoch % seconds, UTC)
    return begin, begin + timedelta(seconds=seconds)


@dataclass
class PriorActivity:
    # (member-day, rule type) → [(occurred_at, points)] of the ledger entries (reversals included)
    ledger: dict[tuple[MemberDay, str], list[tuple[datetime, int]]] = field(default_factory=lambda: defaultdict(list))
    # member-day → [(scored_seq, text_hash)] of scored messages
    hashes: dict[MemberDay, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    # thread → scored_seqs of activities scored as `question_answered`
    answered: dict[Thread, list[int]] = field(default_factory=lambda: defaultdict(list))
    # thread → scored_seqs of scored homework submissions
    submitted: dict[Thread, list[int]] = field(default_factory=lambda: defaultdict(list))
    # (community_id, message_id) → who asked the question carried by that message
    askers: dict[tuple[str, str], str] = field(default_factory=dict)
    # (member-day, rule type) → the sum of `ledger`'s points, kept as entries come (caps ask per activity)
    totals: dict[tuple[MemberDay, str], int] = field(default_factory=dict)

    # -- reads, as the scorer asks them

    def used(self, key: MemberDay, rule_type: str) -> int:
        return self.totals.get((key, rule_type), 0)

    def used_in_slot(self, key: MemberDay, rule_type: str, begin: datetime, end: datetime) -> int:
        return sum(points for at, points in self.ledger.get((key, rule_type), ()) if begin <= at < end)

    def repeated(self, key: MemberDay, text_hash: str, seq: int) -> bool:
        return any(h == text_hash and s < seq for s, h in self.hashes.get(key, ()))

    def answered_before(self, thread: Thread, seq: int) -> bool:
        return any(s < seq for s in self.answered.get(thread, ()))

    def submitted_before(self, thread: Thread, seq: int) -> bool:
        return any(s < seq for s in self.submitted.get(thread, ()))

    # -- what a freshly scored activity adds

    def record(self, activity: Activity, key: MemberDay) -> None:
        seq = activity.scored_seq or 0
        if activity.kind == "message" and activity.text_hash:
            self.hashes[key].append((seq, activity.text_hash))
        if activity.reply_to_message_id:
            thread = (activity.community_id, activity.person_id, activity.reply_to_message_id)
            if activity.rule_type == "question_answered":
                self.answered[thread].append(seq)
            if activity.kind == "homework":
                self.submitted[thread].append(seq)
        if activity.kind == "question" and activity.message_id:
            self.askers.setdefault((activity.community_id, activity.message_id), activity.person_id)

    def award(self, key: MemberDay, rule_type: str, at: datetime, points: int) -> None:
        self.ledger[(key, rule_type)].append((at, points))
        self.totals[(key, rule_type)] = self.totals.get((key, rule_type), 0) + points


async def read_prior(
    session: AsyncSession, *, batch: list[tuple[Activity, MemberDay]], max_seq: int
) -> PriorActivity:
    """The earlier history of every member-day and thread the batch touches."""
    prior = PriorActivity()
    batch_ids = {a.id for a, _ in batch if a.id is not None}
    member_days = sorted({key for _, key in batch})
    for chunk in _chunks(member_days):
        rows = await session.execute(for_keys(
            session,
            select(PointsLedger.community_id, PointsLedger.person_id, PointsLedger.day, PointsLedger.rule_type,
                   PointsLedger.occurred_at, PointsLedger.points),
            (PointsLedger.community_id, PointsLedger.person_id, PointsLedger.day), chunk,
        ))
        for community_id, person_id, day, rule_type, at, points in rows:
            prior.award((community_id, person_id, day), rule_type, at, points)

    hashed = sorted({key for a, key in batch if a.kind == "message" and a.text_hash})
    for chunk in _chunks(hashed):
        rows = await session.execute(for_keys(
            session,
            select(Activity.id, Activity.community_id, Activity.person_id, Activity.day, Activity.scored_seq,
                   Activity.text_hash)
            .where(Activity.kind == "message", Activity.status == "scored", Activity.text_hash != "",
                   Activity.scored_seq < max_seq),
            (Activity.community_id, Activity.person_id, Activity.day), chunk,
        ))
        for id_, community_id, person_id, day, seq, text_hash in rows:
            if id_ not in batch_ids:
                prior.hashes[(community_id, person_id, day)].append((seq, text_hash))

    replies = sorted({(a.community_id, a.reply_to_message_id) for a, _ in batch if a.reply_to_message_id})
    for chunk in _chunks(replies):
        rows = await session.execute(
            select(Activity.id, Activity.community_id, Activity.person_id, Activity.reply_to_message_id,
                   Activity.scored_seq, Activity.rule_type, Activity.kind)
            .where(keys_in(session, (Activity.community_id, Activity.reply_to_message_id), chunk),
                   Activity.status == "scored", Activity.scored_seq < max_seq,
                   (Activity.rule_type == "question_answered") | (Activity.kind == "homework"))
        )
        for id_, community_id, person_id, reply_to, seq, rule_type, kind in rows:
            if id_ in batch_ids:
                continue
            thread = (community_id, person_id, reply_to)
            if rule_type == "question_answered":
                prior.answered[thread].append(seq)
            if kind == "homework":
                prior.submitted[thread].append(seq)
        rows = await session.execute(for_keys(
            session,
            select(Activity.id, Activity.community_id, Activity.message_id, Activity.person_id)
            .where(Activity.kind == "question"),
            (Activity.community_id, Activity.message_id), chunk,
        ))
        for _, community_id, message_id, person_id in sorted(rows):  # the first asker by id
            prior.askers.setdefault((community_id, message_id), person_id)
    return prior
