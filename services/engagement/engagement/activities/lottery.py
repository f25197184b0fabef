"""Lotteries (抽奖) with a verifiable draw.

When a lottery is created a random seed is drawn and only its commitment `sha256(seed)` is published
(in `lottery.opened`, the API and the bot's announcement). After the entries close, the draw reveals
the seed and the winners follow from it and the entrants alone:

    entrants = sorted(set(entrant ids))                       # Unicode code-point order
    ticket(p) = sha256(f"{seed}\\n{p}".encode("utf-8")).hexdigest()
    winners  = the first `winners_count` of sorted(entrants, key=lambda p: (ticket(p), p))

Anyone holding the published entrant list can check `sha256(seed) == commitment` and recompute the
winners (`draw_winners`); `entrants_sha256` (sha256 of the sorted ids joined by newlines) pins the list.
A lottery is drawn once: the draw claims the row (`status open → drawn`) before reading the entries, and
an entry only counts while the row is still open, so no entry slips in after the draw.

Lock order. Every path takes its locks in one order — the community row, then the lottery row, then the
entry: an entry locks the community (which scoring its participation needs anyway, and which a chat
batch already holds) before it locks the lottery, so concurrent entries queue instead of deadlocking
(taking the lottery first and the community in `participated` was the reverse of a chat batch's order).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import (
    ActivityClosed,
    AlreadyDone,
    InvalidActivity,
    NotEligible,
    check_window,
    checked_in_on,
    completed,
    get_community,
    level_of,
    local_text,
    member_of,
    open_in_transaction,
    participated,
    post,
    require_aware,
    require_member,
)
from engagement.activities.schemas import LotteryCreate
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.errors import ThingNotFound
from engagement.models import Lottery, LotteryEntry
from engagement.scoring.engine import locked_community
from qunzhu_common.events.contracts.chat import mention_token
from qunzhu_common.events.contracts.engagement import LotteryDrawn, LotteryOpened
from qunzhu_common.timeutil import utcnow

ALGORITHM = ("winners = first N of sorted(entrants, key=(sha256(seed + '\\n' + entrant_id).hexdigest(), "
             "entrant_id)); entrants sorted and deduplicated by code point")


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def ticket(seed: str, person_id: str) -> str:
    return hashlib.sha256(f"{seed}\n{person_id}".encode()).hexdigest()


def entrants_digest(entrants: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(entrants))).encode("utf-8")).hexdigest()


def draw_winners(seed: str, entrants: Iterable[str], count: int) -> list[str]:
    """The documented draw: a pure function of the seed and the set of entrants."""
    unique = sorted(set(entrants))
    return sorted(unique, key=lambda p: (ticket(seed, p), p))[:count]


async def create(session: AsyncSession, ctx: EngagementContext, *, community_id: str, data: LotteryCreate
                 ) -> Lottery:
    community = await get_community(session, community_id)
    require_aware(data.opens_at, "opens_at")
    require_aware(data.closes_at, "closes_at")
    now = utcnow()
    opens_at = data.opens_at or now
    if data.closes_at <= opens_at:
        raise InvalidActivity(f"closes_at {data.closes_at.isoformat()} must be after opens_at {opens_at.isoformat()}")
    seed = secrets.token_hex(32)
    lottery = Lottery(**data.model_dump(exclude={"opens_at"}), community_id=community_id, opens_at=opens_at,
                      seed=seed, seed_commitment=commitment(seed), created_at=now)
    session.add(lottery)
    await session.flush()
    await ctx.emit(session, type="lottery.opened", community_id=community_id, data=LotteryOpened(
        community_id=community_id, lottery_id=lottery.id, title=lottery.title, group_id=lottery.group_id or None,
        keyword=lottery.keyword, winners_count=lottery.winners_count, opens_at=opens_at, closes_at=lottery.closes_at,
        seed_commitment=lottery.seed_commitment,
    ))
    await post(session, ctx, community_id=community_id, group_id=lottery.group_id, announce=True,
               action_id=f"lottery:{lottery.id}:opened", text=(
                   f"🎁 抽奖「{lottery.title}」{lottery.prize}\n发送「{lottery.keyword}」参加，"
                   f"{local_text(lottery.closes_at, community)} 截止，抽 {lottery.winners_count} 人。\n"
                   f"种子承诺 sha256: {lottery.seed_commitment}"))
    return lottery


async def get(session: AsyncSession, *, community_id: str, lottery_id: str) -> Lottery:
    lottery = await session.get(Lottery, lottery_id)
    if lottery is None or lottery.community_id != community_id:
        raise ThingNotFound(f"lottery {lottery_id} does not exist in community {community_id}")
    return lottery


async def check_eligible(session: AsyncSession, *, lottery: Lottery, person_id: str, at: datetime) -> None:
    """Raise NotEligible with the reason when the member may not enter."""
    if lottery.require_active:
        await require_member(session, lottery.community_id, person_id)
    elif await member_of(session, lottery.community_id, person_id) is None:
        raise NotEligible(f"{person_id} is not a member of the community")
    if lottery.min_level > 1:
        level = await level_of(session, lottery.community_id, person_id)
        if level < lottery.min_level:
            raise NotEligible(f"level {level} is below the lottery's minimum level {lottery.min_level}",
                              level=level, min_level=lottery.min_level)
    if lottery.require_checkin_today:
        community = await get_community(session, lottery.community_id)
        if not await checked_in_on(session, community=community, person_id=person_id, at=at):
            raise NotEligible("the lottery is for members who checked in (打卡) today")


async def enter(
    session: AsyncSession, ctx: EngagementContext, *, lottery: Lottery, person_id: str, at: datetime,
    source: str = "api", group_id: str = "",
) -> tuple[LotteryEntry, bool]:
    """One entry per member: (entry, True) when new, (existing entry, False) when entered before."""
    existing = await session.get(LotteryEntry, (lottery.id, person_id))
    if existing is not None:
        return existing, False
    check_window(what=f"lottery {lottery.title!r}", at=at, opens_at=lottery.opens_at, closes_at=lottery.closes_at)
    await locked_community(session, lottery.community_id)
    await session.get(Lottery, lottery.id, with_for_update=True, populate_existing=True)  # refreshes `lottery`
    if lottery.status != "open":
        raise ActivityClosed(f"lottery {lottery.title!r} was already drawn")
    await check_eligible(session, lottery=lottery, person_id=person_id, at=at)
    inserted = await insert_ignore(session, LotteryEntry, {
        "lottery_id": lottery.id, "person_id": person_id, "source": source, "entered_at": at,
    })
    entry = await session.get(LotteryEntry, (lottery.id, person_id), populate_existing=True)
    assert entry is not None
    if not inserted:
        return entry, False  # a concurrent duplicate won the insert
    # Counts only while the lottery is open; once drawn, the entry is refused (the draw already read).
    counted = await session.execute(update(Lottery).where(Lottery.id == lottery.id, Lottery.status == "open")
                                    .values(entry_count=Lottery.entry_count + 1))
    if counted.rowcount != 1:
        raise ActivityClosed(f"lottery {lottery.title!r} was already drawn")
    await participated(session, ctx, community_id=lottery.community_id, activity="lottery", activity_id=lottery.id,
                       person_id=person_id, action="entered", at=at, group_id=group_id or lottery.group_id,
                       title=lottery.title)
    return entry, True


async def entrants(session: AsyncSession, *, lottery_id: str) -> list[str]:
    rows = await session.execute(select(LotteryEntry.person_id).where(LotteryEntry.lottery_id == lottery_id))
    return sorted(rows.scalars())


async def draw(session: AsyncSession, ctx: EngagementContext, *, lottery: Lottery, now: datetime | None = None
               ) -> Lottery:
    """Draw the winners once, after the entries close, and reveal the seed."""
    now = now or utcnow()
    if lottery.status == "drawn":
        when = lottery.drawn_at.isoformat() if lottery.drawn_at else "?"
        raise AlreadyDone(f"lottery {lottery.id} was drawn at {when}; a draw is never re-run",
                          winners=lottery.winners)
    if now < lottery.closes_at:
        raise ActivityClosed(f"entries close at {lottery.closes_at.isoformat()}; draw after that",
                             closes_at=lottery.closes_at.isoformat())
    claimed = await session.execute(update(Lottery).where(Lottery.id == lottery.id, Lottery.status == "open")
                                    .values(status="drawn", drawn_at=now))
    if claimed.rowcount != 1:
        raise AlreadyDone(f"lottery {lottery.id} was already drawn; a draw is never re-run")
    people = await entrants(session, lottery_id=lottery.id)
    winners = draw_winners(lottery.seed, people, lottery.winners_count)
    await session.execute(update(Lottery).where(Lottery.id == lottery.id).values(winners=winners))
    await session.refresh(lottery)
    community = await get_community(session, lottery.community_id)
    await ctx.emit(session, type="lottery.drawn", community_id=lottery.community_id, data=LotteryDrawn(
        community_id=lottery.community_id, lottery_id=lottery.id, seed=lottery.seed,
        seed_commitment=lottery.seed_commitment, algorithm=ALGORITHM, entrants_count=len(people),
        entrants_sha256=entrants_digest(people), winners=winners, drawn_at=now,
    ))
    completed(session, ctx, "lottery")
    names = "、".join(mention_token(w) for w in winners) if winners else "（无人参加）"  # named by the gateway
    await post(session, ctx, community_id=lottery.community_id, group_id=lottery.group_id, announce=True,
               action_id=f"lottery:{lottery.id}:drawn", text=(
                   f"🎉 抽奖「{lottery.title}」开奖（{local_text(now, community)}）：{names}\n"
                   f"{len(people)} 人参加。种子 {lottery.seed}，sha256 = {lottery.seed_commitment}，可自行验证。"))
    return lottery


async def open_for_keyword(session: AsyncSession, *, community_id: str, group_id: str, text: str, at: datetime
                           ) -> Lottery | None:
    """The open lottery this chat message enters (its whole text is the keyword), if any."""
    words = text.strip()
    if not words or len(words) > 50:
        return None

    async def load() -> list[Lottery]:
        return list((await session.execute(select(Lottery).where(
            Lottery.community_id == community_id, Lottery.status == "open"))).scalars().all())

    rows = [row for row in await open_in_transaction(session, f"lottery:{community_id}", load)
            if row.status == "open" and row.keyword == words and row.opens_at <= at < row.closes_at
            and row.group_id in ("", group_id)]
    return max(rows, key=lambda row: row.created_at, default=None)
