"""Polls and votes (投票): single or multiple choice, anonymous or named, live counts, results broadcast.

One vote per member (the primary key): voting the same again is a no-op, voting differently changes
the vote only in a `changeable` poll and only before the deadline. Closing announces the results once.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import (
    ActivityClosed,
    AlreadyDone,
    InvalidActivity,
    check_window,
    completed,
    get_community,
    local_text,
    open_in_transaction,
    participated,
    post,
    require_aware,
    require_member,
)
from engagement.activities.schemas import OptionCount, PollCreate, PollResults
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.errors import ThingNotFound
from engagement.models import Poll, PollVote
from qunzhu_common.events.contracts.engagement import PollClosed
from qunzhu_common.timeutil import utcnow

# `投票 2`, `#投票 1,3`, `投票：1 3`
_VOTE = re.compile(r"^[#/]?投票\s*[:：]?\s*([0-9][0-9\s,，、]*)$")


def parse_vote(text: str) -> list[int] | None:
    match = _VOTE.match(text.strip())
    if match is None:
        return None
    return [int(n) for n in re.split(r"[\s,，、]+", match.group(1).strip()) if n]


async def create(session: AsyncSession, ctx: EngagementContext, *, community_id: str, data: PollCreate) -> Poll:
    community = await get_community(session, community_id)
    require_aware(data.closes_at, "closes_at")
    now = utcnow()
    if data.closes_at <= now:
        raise InvalidActivity(f"closes_at {data.closes_at.isoformat()} is in the past")
    poll = Poll(**data.model_dump(), community_id=community_id, created_at=now)
    session.add(poll)
    await session.flush()
    lines = "\n".join(f"{i}. {option}" for i, option in enumerate(poll.options, start=1))
    how = f"可选 {poll.max_choices} 项，如「投票 1,2」" if poll.multiple else "回复「投票 1」"
    await post(session, ctx, community_id=community_id, group_id=poll.group_id, announce=True,
               action_id=f"poll:{poll.id}:opened", text=(
                   f"🗳 投票：{poll.question}\n{lines}\n{how}，{local_text(poll.closes_at, community)} 截止"
                   f"{'（匿名）' if poll.anonymous else ''}。"))
    return poll


async def get(session: AsyncSession, *, community_id: str, poll_id: str) -> Poll:
    poll = await session.get(Poll, poll_id)
    if poll is None or poll.community_id != community_id:
        raise ThingNotFound(f"poll {poll_id} does not exist in community {community_id}")
    return poll


def _checked(poll: Poll, choices: list[int]) -> list[int]:
    picked = sorted(set(choices))
    if len(picked) != len(choices):
        raise InvalidActivity("an option can be chosen once")
    if any(n < 1 or n > len(poll.options) for n in picked):
        raise InvalidActivity(f"options are numbered 1–{len(poll.options)}, got {choices}")
    if not poll.multiple and len(picked) != 1:
        raise InvalidActivity("this poll is single choice: choose exactly one option")
    if len(picked) > poll.max_choices:
        raise InvalidActivity(f"choose at most {poll.max_choices} options, got {len(picked)}")
    return picked


def _refuse_if_closed(poll: Poll, at: datetime) -> None:
    if poll.closed_at is not None:
        raise ActivityClosed(f"poll closed at {poll.closed_at.isoformat()}", closes_at=poll.closed_at.isoformat())
    check_window(what="poll", at=at, opens_at=None, closes_at=poll.closes_at)


async def vote(
    session: AsyncSession, ctx: EngagementContext, *, poll: Poll, person_id: str, choices: list[int], at: datetime,
    group_id: str = "",
) -> tuple[PollVote, str]:
    """(vote, outcome): "new", "unchanged" (the same vote again) or "changed"."""
    picked = _checked(poll, choices)
    existing = await session.get(PollVote, (poll.id, person_id))
    if existing is None:
        _refuse_if_closed(poll, at)
        await require_member(session, poll.community_id, person_id)
        inserted = await insert_ignore(session, PollVote, {
            "poll_id": poll.id, "person_id": person_id, "choices": picked, "voted_at": at, "changed_at": at})
        existing = await session.get(PollVote, (poll.id, person_id), populate_existing=True)
        assert existing is not None
        if inserted:
            await participated(session, ctx, community_id=poll.community_id, activity="poll", activity_id=poll.id,
                               person_id=person_id, action="voted", at=at, group_id=group_id or poll.group_id,
                               title=poll.question)
            return existing, "new"
    if list(existing.choices) == picked:
        return existing, "unchanged"
    if not poll.changeable:
        raise AlreadyDone(f"already voted {list(existing.choices)}; votes cannot be changed in this poll",
                          choices=list(existing.choices))
    _refuse_if_closed(poll, at)
    existing.choices, existing.changed_at = picked, at
    await session.flush()
    await participated(session, ctx, community_id=poll.community_id, activity="poll", activity_id=poll.id,
                       person_id=person_id, action="vote_changed", at=at, group_id=group_id or poll.group_id)
    return existing, "changed"


async def results(session: AsyncSession, *, poll: Poll, now: datetime | None = None) -> PollResults:
    """Live counts; voters per option only in a named poll."""
    votes = (await session.execute(select(PollVote).where(PollVote.poll_id == poll.id)
                                   .order_by(PollVote.voted_at, PollVote.person_id))).scalars().all()
    counts = [OptionCount(number=i, option=o, votes=0, voters=None if poll.anonymous else [])
              for i, o in enumerate(poll.options, start=1)]
    for row in votes:
        for n in row.choices:
            counts[n - 1].votes += 1
            if counts[n - 1].voters is not None:
                counts[n - 1].voters.append(row.person_id)  # type: ignore[union-attr]
    now = now or utcnow()
    return PollResults(poll_id=poll.id, question=poll.question, voters=len(votes), counts=counts,
                       open=poll.closed_at is None and now < poll.closes_at)


async def close(session: AsyncSession, ctx: EngagementContext, *, poll: Poll, now: datetime | None = None
                ) -> PollResults:
    """Close the poll (at or before its deadline) and broadcast the results, once."""
    now = now or utcnow()
    claimed = await session.execute(update(Poll).where(Poll.id == poll.id, Poll.closed_at.is_(None))
                                    .values(closed_at=min(now, poll.closes_at)))
    await session.refresh(poll)
    final = await results(session, poll=poll, now=now)
    if claimed.rowcount != 1:
        return final  # closed before: the results were announced then
    assert poll.closed_at is not None
    await ctx.emit(session, type="poll.closed", community_id=poll.community_id, data=PollClosed(
        community_id=poll.community_id, poll_id=poll.id, question=poll.question, options=list(poll.options),
        counts=[c.votes for c in final.counts], voters=final.voters, closed_at=poll.closed_at,
    ))
    completed(session, ctx, "poll")
    lines = "\n".join(f"{c.number}. {c.option}：{c.votes} 票" + (f"（{'、'.join(c.voters)}）" if c.voters else "")
                      for c in final.counts)
    await post(session, ctx, community_id=poll.community_id, group_id=poll.group_id, announce=True,
               action_id=f"poll:{poll.id}:closed",
               text=f"📊 投票结果：{poll.question}\n{lines}\n共 {final.voters} 人投票。")
    return final


async def open_in_group(session: AsyncSession, *, community_id: str, group_id: str, at: datetime) -> Poll | None:
    """The newest open poll a chat vote in this group is for."""

    async def load() -> list[Poll]:
        return list((await session.execute(select(Poll).where(
            Poll.community_id == community_id, Poll.closed_at.is_(None)))).scalars().all())

    rows = [row for row in await open_in_transaction(session, f"poll:{community_id}", load)
            if row.closed_at is None and row.group_id in ("", group_id) and row.closes_at > at]
    return max(rows, key=lambda row: row.created_at, default=None)


async def close_due(session: AsyncSession, ctx: EngagementContext, *, now: datetime) -> int:
    """Close every poll past its deadline (the activities timer calls this)."""
    due = (await session.execute(select(Poll).where(Poll.closed_at.is_(None), Poll.closes_at <= now))).scalars().all()
    for poll in due:
        await close(session, ctx, poll=poll, now=now)
    return len(due)
