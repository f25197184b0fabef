"""A withdrawn (撤回) chat message no longer counts (#17): chat.message.recalled takes back what it earned.

The domain documents no rule for a recalled message, so engagement treats it as never posted from then on:
every activity the message itself made — the message, its 打卡 check-in, 作业 homework, question or 接龙
command — gets a reversal of each award of its current revision in the points ledger (the same append-only
reversal a recompute writes; totals, per-day figures and levels move with it), and its status becomes
`recalled`, so counts, streaks, goals, the key-people graph, recomputes and a rebuild all leave it out.
Reactions others gave it and replies to it are theirs and stay. Exactly once: the event's inbox entry, and a
recalled activity is never reversed again (a second recall under another delivery changes nothing). A recall
arriving before its message never reaches that message here: the gateway's message-level dedupe lets the recall
claim the message's key, so the message that follows is a repeat (gateway/chatdir/messages.py).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.models import Activity, PointsLedger
from engagement.scoring.engine import score_queued_now
from engagement.scoring.ledger import write_entry
from engagement.scoring.ruleset import rules_at

RECALLED = "recalled"
NOT_THE_MESSAGE = ("reaction", "reaction_given")  # someone else's activity about the message


async def withdraw(session: AsyncSession, ctx: EngagementContext, *, community_id: str, group_id: str,
                   message_id: str) -> int:
    """Take back what the message earned; returns the points reversed."""
    await score_queued_now(session)  # the message may have come in this same batch
    rows = (await session.execute(select(Activity).where(
        Activity.community_id == community_id, Activity.group_id == group_id, Activity.message_id == message_id,
        Activity.kind.not_in(NOT_THE_MESSAGE),  # type: ignore[attr-defined]
        Activity.status.in_(("pending", "scored")),  # type: ignore[attr-defined]
    ))).scalars().all()
    reversed_points = 0
    for activity in rows:
        if activity.status == "scored":
            entries = (await session.execute(select(PointsLedger).where(
                PointsLedger.activity_id == activity.id, PointsLedger.revision == activity.revision,
                PointsLedger.kind == "award",
            ))).scalars().all()
            _, rules = await rules_at(session, community_id=community_id, at=activity.occurred_at)
            for entry in entries:
                await write_entry(
                    session, ctx, activity=activity, rule_type=entry.rule_type, version=entry.rule_set_version,
                    rules=rules, points=-entry.points, kind="reversal", revision=activity.revision,
                    reason="the message was recalled",
                )
                reversed_points += entry.points
        activity.status = RECALLED
    await session.flush()
    return reversed_points
