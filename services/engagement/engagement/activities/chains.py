"""Sign-up chains (接龙): numbered sign-ups with a capacity, a waitlist and cancellation.

In a chat group, each member copies the list and appends a line; two members copying the same list
at once lose one line. Here every sign-up is its own row (chain, member) and takes the next number
under the chain's row lock, so concurrent sign-ups never lose or duplicate a line; the bot then posts
the list as it really is. The first `capacity` active lines are confirmed, the rest wait in order:
a cancellation promotes the next waiting member automatically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import (
    ActivityClosed,
    check_window,
    completed,
    get_community,
    participated,
    post,
    require_aware,
    require_member,
)
from engagement.activities.schemas import ChainCreate, ChainLine, ChainPublic
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.errors import ThingNotFound
from engagement.models import ChainSignup, SignupChain
from qunzhu_common.events.contracts.chat import mention_token, person_token
from qunzhu_common.timeutil import utcnow

_NUMBERED = re.compile(r"^\s*(\d{1,4})\s*[.．、)）:：]\s*(.*?)\s*$")
_CAPACITY = re.compile(r"(?:限|上限|名额|人数)\s*[:：]?\s*(\d{1,5})\s*(?:人|位|名)?")
_CANCEL = ("取消", "退出", "cancel")


@dataclass
class ParsedChain:
    """A `接龙` message: its title and description lines, the numbered lines, and the sender's intent."""

    title: str = ""
    description: str = ""
    lines: list[tuple[int, str]] = field(default_factory=list)
    capacity: int | None = None
    cancel: bool = False

    def own_line(self, sender_name: str) -> str:
        """The sender's line: the numbered line naming them, else the last one (the one just appended)."""
        if sender_name:
            for _, text in self.lines:
                if sender_name in text:
                    return text
        return self.lines[-1][1] if self.lines else sender_name


def parse_chain(argument: str) -> ParsedChain:
    """Parse the text after `接龙`: a title line, description lines, then `1. 张三`-style numbered lines."""
    parsed = ParsedChain()
    text = argument.strip()
    if text.lower() in _CANCEL or any(text.startswith(word) and len(text) <= 10 for word in _CANCEL):
        parsed.cancel = True
        return parsed
    other: list[str] = []
    for raw in text.splitlines():
        numbered = _NUMBERED.match(raw)
        if numbered is not None:
            if numbered.group(2):
                parsed.lines.append((int(numbered.group(1)), numbered.group(2)[:500]))
        elif raw.strip():
            other.append(raw.strip())
    if other:
        parsed.title = other[0][:200]
        parsed.description = "\n".join(other[1:])[:2000]
    for line in other:
        capacity = _CAPACITY.search(line)
        if capacity is not None and int(capacity.group(1)) > 0:
            parsed.capacity = int(capacity.group(1))
            break
    return parsed


async def create(session: AsyncSession, ctx: EngagementContext, *, community_id: str, data: ChainCreate,
                 meetup_id: str | None = None, announce: bool = True) -> SignupChain:
    await get_community(session, community_id)
    require_aware(data.closes_at, "closes_at")
    chain = SignupChain(**data.model_dump(), community_id=community_id, meetup_id=meetup_id, created_at=utcnow())
    session.add(chain)
    await session.flush()
    if announce:
        await post_list(session, ctx, chain=chain, action_id=f"chain:{chain.id}:opened")
    return chain


async def get(session: AsyncSession, *, community_id: str, chain_id: str, lock: bool = False) -> SignupChain:
    chain = await session.get(SignupChain, chain_id, with_for_update=lock, populate_existing=lock)
    if chain is None or chain.community_id != community_id:
        raise ThingNotFound(f"sign-up chain {chain_id} does not exist in community {community_id}")
    return chain


async def lines(session: AsyncSession, *, chain: SignupChain) -> tuple[list[ChainLine], list[ChainLine]]:
    """(confirmed, waitlist), numbered in sign-up order."""
    rows = (await session.execute(select(ChainSignup).where(
        ChainSignup.chain_id == chain.id, ChainSignup.cancelled_at.is_(None)).order_by(ChainSignup.seq)
    )).scalars().all()
    confirmed: list[ChainLine] = []
    waitlist: list[ChainLine] = []
    for position, row in enumerate(rows, start=1):
        ok = chain.capacity is None or position <= chain.capacity
        (confirmed if ok else waitlist).append(ChainLine(
            position=position, person_id=row.person_id, line=row.line or row.person_id,
            status="confirmed" if ok else "waitlisted", signed_up_at=row.signed_up_at))
    return confirmed, waitlist


async def public(session: AsyncSession, chain: SignupChain) -> ChainPublic:
    confirmed, waitlist = await lines(session, chain=chain)
    return ChainPublic(**chain.model_dump(), confirmed=confirmed, waitlist=waitlist)


def shown(line: ChainLine, *, mention: bool = False) -> str:
    """A line as the group sees it: what the person wrote, else their name as the platform reports it in
    that group (the gateway renders the placeholder; never the raw id)."""
    if line.line != line.person_id:
        return line.line
    return mention_token(line.person_id) if mention else person_token(line.person_id)


def render(chain: SignupChain, confirmed: list[ChainLine], waitlist: list[ChainLine]) -> str:
    count = f"{len(confirmed)}/{chain.capacity}" if chain.capacity else str(len(confirmed))
    parts = [f"接龙：{chain.title}（{count}）"]
    if chain.description:
        parts.append(chain.description)
    parts += [f"{line.position}. {shown(line)}" for line in confirmed]
    if waitlist:
        parts.append("候补：")
        parts += [f"{line.position}. {shown(line)}" for line in waitlist]
    return "\n".join(parts)


async def post_list(session: AsyncSession, ctx: EngagementContext, *, chain: SignupChain, action_id: str) -> None:
    confirmed, waitlist = await lines(session, chain=chain)
    await post(session, ctx, community_id=chain.community_id, group_id=chain.group_id, action_id=action_id,
               text=render(chain, confirmed, waitlist))


async def _position(session: AsyncSession, chain: SignupChain, person_id: str) -> tuple[int | None, str]:
    confirmed, waitlist = await lines(session, chain=chain)
    for line in confirmed + waitlist:
        if line.person_id == person_id:
            return line.position, line.status
    return None, "cancelled"


async def signup(
    session: AsyncSession, ctx: EngagementContext, *, chain: SignupChain, person_id: str, line: str, at: datetime,
    source: str = "api", score: bool = True,
) -> tuple[str, int | None, str]:
    """Sign a member up once: (outcome, position, status); outcome signed_up, already or rejoined."""
    chain = await get(session, community_id=chain.community_id, chain_id=chain.id, lock=True)
    row = await session.get(ChainSignup, (chain.id, person_id), populate_existing=True)
    if row is not None and row.cancelled_at is None:
        position, status = await _position(session, chain, person_id)
        return "already", position, status
    if chain.status != "open":
        raise ActivityClosed(f"sign-up chain {chain.title!r} is closed")
    check_window(what=f"sign-up chain {chain.title!r}", at=at, opens_at=None, closes_at=chain.closes_at)
    await require_member(session, chain.community_id, person_id)
    chain.next_seq += 1
    if row is None:
        inserted = await insert_ignore(session, ChainSignup, {
            "chain_id": chain.id, "person_id": person_id, "seq": chain.next_seq, "line": line[:500],
            "source": source, "signed_up_at": at})
        assert inserted, "the chain's row lock serialises sign-ups"
        outcome = "signed_up"
    else:  # signing up again after cancelling: back of the queue
        row.seq, row.line, row.source, row.signed_up_at, row.cancelled_at = chain.next_seq, line[:500], source, at, None
        outcome = "rejoined"
    await session.flush()
    position, status = await _position(session, chain, person_id)
    await participated(session, ctx, community_id=chain.community_id, activity="chain", activity_id=chain.id,
                       person_id=person_id, action="signed_up" if status == "confirmed" else "waitlisted", at=at,
                       group_id=chain.group_id, position=position, title=chain.title, score=score)
    await post_list(session, ctx, chain=chain, action_id=f"chain:{chain.id}:{chain.next_seq}")
    return outcome, position, status


async def cancel(session: AsyncSession, ctx: EngagementContext, *, chain: SignupChain, person_id: str, at: datetime
                 ) -> tuple[str, list[str]]:
    """Take a member off the list: (outcome, promoted members). Cancelling twice changes nothing."""
    chain = await get(session, community_id=chain.community_id, chain_id=chain.id, lock=True)
    row = await session.get(ChainSignup, (chain.id, person_id), populate_existing=True)
    if row is None:
        raise ThingNotFound(f"{person_id} is not on sign-up chain {chain.title!r}")
    if row.cancelled_at is not None:
        return "already_cancelled", []
    before = {line.person_id for line in (await lines(session, chain=chain))[0]}
    row.cancelled_at = at
    await session.flush()
    confirmed, _ = await lines(session, chain=chain)
    promoted = [line for line in confirmed if line.person_id not in before]
    await participated(session, ctx, community_id=chain.community_id, activity="chain", activity_id=chain.id,
                       person_id=person_id, action="cancelled", at=at, group_id=chain.group_id)
    for line in promoted:
        await participated(session, ctx, community_id=chain.community_id, activity="chain", activity_id=chain.id,
                           person_id=line.person_id, action="promoted", at=at, group_id=chain.group_id,
                           position=line.position, title=chain.title)
        await post(session, ctx, community_id=chain.community_id, group_id=chain.group_id,
                   action_id=f"chain:{chain.id}:promoted:{line.person_id}:{row.seq}",
                   text=f"「{chain.title}」有人取消，{shown(line, mention=True)} "
                        f"从候补转为正式报名（第 {line.position} 位）。")
    await post_list(session, ctx, chain=chain, action_id=f"chain:{chain.id}:cancel:{row.seq}")
    return "cancelled", [line.person_id for line in promoted]


async def close(session: AsyncSession, ctx: EngagementContext, *, chain: SignupChain) -> SignupChain:
    """Stop taking sign-ups (the list stays); closing twice changes nothing."""
    chain = await get(session, community_id=chain.community_id, chain_id=chain.id, lock=True)
    if chain.status != "closed":
        chain.status = "closed"
        completed(session, ctx, "chain")
        await post_list(session, ctx, chain=chain, action_id=f"chain:{chain.id}:closed")
    return chain


async def for_chat(session: AsyncSession, *, community_id: str, group_id: str, title: str) -> SignupChain | None:
    """The open chain a chat `接龙` is for: the one with this title, else (no title) the newest in the group."""
    rows = (await session.execute(select(SignupChain).where(
        SignupChain.community_id == community_id, SignupChain.group_id == group_id, SignupChain.status == "open",
    ).order_by(SignupChain.created_at.desc()))).scalars().all()
    if title:
        return next((row for row in rows if row.title == title), None)
    return rows[0] if rows else None


async def from_chat(
    session: AsyncSession, ctx: EngagementContext, *, community_id: str, group_id: str, person_id: str,
    sender_name: str, argument: str, at: datetime,
) -> None:
    """A `接龙` message: start a chain (a new title), sign the sender up, or cancel (`接龙 取消`)."""
    parsed = parse_chain(argument)
    chain = await for_chat(session, community_id=community_id, group_id=group_id, title=parsed.title)
    if parsed.cancel:
        chain = chain or await for_chat(session, community_id=community_id, group_id=group_id, title="")
        if chain is not None:
            await cancel(session, ctx, chain=chain, person_id=person_id, at=at)
        return
    if chain is None and parsed.title:
        await require_member(session, community_id, person_id)
        chain = await create(session, ctx, community_id=community_id, announce=False, data=ChainCreate(
            title=parsed.title, description=parsed.description, group_id=group_id, capacity=parsed.capacity,
            created_by=person_id))
    if chain is None:
        return
    # The chat message itself is scored as a `signup_chain` activity by the chat handler.
    await signup(session, ctx, chain=chain, person_id=person_id, line=parsed.own_line(sender_name), at=at,
                 source="chat", score=False)
