"""Sub-domains that react to freshly scored activities (live only: replay announces nothing again).

Called once per scored batch: what the reactions need (open challenges, members' roles and strike
counts) is read once for the batch, then the activities are handled in scoring order.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.checkins.service import on_checkin, open_challenges
from engagement.context import EngagementContext
from engagement.dbutil import for_keys, keys_in
from engagement.jobs.members import on_strike
from engagement.leaderboard.goals import check_goals
from engagement.models import Activity, CommunityCopy, MemberCopy
from qunzhu_common.context import correlation_id_var
from qunzhu_common.outbox import run_after_commit

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engagement.scoring.ledger import Award

Member = tuple[str, str]


async def after_scoring(session: AsyncSession, ctx: EngagementContext, *, awards: list[Award]) -> None:
    community_ids = sorted({a.activity.community_id for a in awards})
    communities = {cid: await session.get(CommunityCopy, cid) for cid in community_ids}
    checkins = [a for a in awards if a.activity.kind == "checkin"]
    challenges = await open_challenges(
        session, community_ids=sorted({a.activity.community_id for a in checkins}),
        since=min(a.activity.occurred_at for a in checkins),
    ) if checkins else []
    struck = [a for a in awards if a.activity.strike]
    roles, strikes_after = await _strike_facts(session, struck) if struck else ({}, Counter())
    # The n-th strike of a member in this batch is their (total after the batch - those after it)-th.
    strikes_later: Counter[Member] = Counter((a.activity.community_id, a.activity.person_id) for a in struck)

    for award in awards:
        activity = award.activity
        community = communities.get(activity.community_id)
        if community is None:
            continue
        member = (activity.community_id, activity.person_id)
        with _correlated(award.correlation_id):
            if activity.kind == "checkin" and challenges:
                await on_checkin(session, ctx, activity=activity, community=community, challenges=challenges)
            if activity.strike:
                strikes_later[member] -= 1
                if roles.get(member) == "member":  # owners, admins and guests are not struck
                    await on_strike(session, ctx, activity=activity, rules=award.rules,
                                    strikes=strikes_after[member] - strikes_later[member])
    if struck and ctx.metrics is not None:
        kinds = Counter(a.activity.strike for a in struck if roles.get((a.activity.community_id, a.activity.person_id))
                        == "member")
        metrics = ctx.metrics

        def count_strikes() -> None:
            for kind, n in kinds.items():
                metrics.strikes.labels(kind).inc(n)

        run_after_commit(session, count_strikes)

    last_of: dict[str, Award] = {a.activity.community_id: a for a in awards}
    for community_id, award in last_of.items():
        community = communities.get(community_id)
        if community is not None:
            await check_goals(session, ctx, community_id=community_id, timezone=community.timezone,
                              at=award.activity.occurred_at)


async def _strike_facts(session: AsyncSession, struck: list[Award]) -> tuple[dict[Member, str], Counter[Member]]:
    """Roles of the struck members and their strike counts, this batch included."""
    members = sorted({(a.activity.community_id, a.activity.person_id) for a in struck})
    roles = {(c, p): role for c, p, role in await session.execute(
        select(MemberCopy.community_id, MemberCopy.person_id, MemberCopy.role)
        .where(keys_in(session, (MemberCopy.community_id, MemberCopy.person_id), members)))}
    counts = Counter({(c, p): int(n) for c, p, n in await session.execute(for_keys(
        session,
        select(Activity.community_id, Activity.person_id, func.count().label("strikes"))
        .where(Activity.strike.is_not(None), Activity.status == "scored")
        .group_by(Activity.community_id, Activity.person_id),
        (Activity.community_id, Activity.person_id), members,
    ))})
    return roles, counts


@contextmanager
def _correlated(correlation_id: str | None) -> Iterator[None]:
    """Events a reaction emits belong to the conversation of the event that brought the activity."""
    token = correlation_id_var.set(correlation_id) if correlation_id else None
    try:
        yield
    finally:
        if token is not None:
            correlation_id_var.reset(token)
