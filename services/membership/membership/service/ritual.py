"""Joining ritual (入群仪式): a joined member stays `pending_ritual` until their self-introduction (a chat
message in the template's format) and their group nickname (in the community's pattern) are both seen."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.models import ChatGroup, Community, Membership
from membership.service.access import find_membership
from membership.service.events import emit_member

NICKNAME_SEPARATORS = r"[-－—_·|｜/ ]+"
_PATTERN_SEPARATORS = r"[-－—_·|｜/]+"


def intro_matches(text: str, fields: list[str]) -> bool:
    """Every field label appears, followed by some content of its own (e.g. `我是谁：张三，做增长`)."""
    positions = []
    for label in fields:
        index = text.find(label)
        if index < 0:
            return False
        positions.append((index, label))
    positions.sort()
    for i, (index, label) in enumerate(positions):
        end = positions[i + 1][0] if i + 1 < len(positions) else len(text)
        content = re.sub(r"^[\s:：,，、\-—=]*", "", text[index + len(label):end]).strip()
        if not content:
            return False
    return True


def nickname_matches(name: str, pattern: str) -> bool:
    """`城市-行业-名字` asks for three non-empty parts: `上海-电商-小王` (any usual separator) matches."""
    wanted = len([p for p in re.split(_PATTERN_SEPARATORS, pattern) if p.strip()])
    parts = [p for p in re.split(NICKNAME_SEPARATORS, name.strip()) if p]
    return len(parts) == wanted and all(len(p) <= 30 for p in parts)


async def community_of_group(session: AsyncSession, group_id: str) -> Community | None:
    group = await session.get(ChatGroup, group_id)
    return None if group is None else await session.get(Community, group.community_id)


async def on_message(session: AsyncSession, ctx: MembershipContext, *, group_id: str, sender_id: str, text: str,
                     at: datetime) -> None:
    community = await community_of_group(session, group_id)
    if community is None or not community.ritual_enabled:
        return
    member = await find_membership(session, community.id, sender_id, for_update=True)
    if member is None or member.status != "pending_ritual" or member.ritual_intro_at is not None:
        return
    if intro_matches(text, community.intro_fields):
        member.ritual_intro_at = at
        await _maybe_complete(session, ctx, community=community, member=member, at=at)


async def on_nickname(session: AsyncSession, ctx: MembershipContext, *, community: Community, member: Membership,
                      name: str, at: datetime) -> None:
    if name:
        member.display_name = name[:200]
    if member.status != "pending_ritual" or not community.ritual_enabled:
        return
    if nickname_matches(name, community.nickname_pattern):
        member.ritual_nickname_at = member.ritual_nickname_at or at
        await _maybe_complete(session, ctx, community=community, member=member, at=at)
    else:
        member.ritual_nickname_at = None  # renamed away from the pattern before finishing


async def on_renamed(session: AsyncSession, ctx: MembershipContext, *, group_id: str, member_id: str, name: str,
                     at: datetime) -> None:
    community = await community_of_group(session, group_id)
    if community is None:
        return
    member = await find_membership(session, community.id, member_id, for_update=True)
    if member is not None:
        await on_nickname(session, ctx, community=community, member=member, name=name, at=at)


async def _maybe_complete(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                          member: Membership, at: datetime) -> None:
    if member.ritual_intro_at is None or member.ritual_nickname_at is None:
        return
    member.ritual_done_at = at
    member.status, member.status_reason = "active", "joining ritual completed"
    await emit_member(session, ctx, "member.activated", member)


async def release_pending(session: AsyncSession, ctx: MembershipContext, *, community: Community) -> int:
    """The ritual was switched off: nobody waits for it any more."""
    rows = (await session.execute(select(Membership).where(
        Membership.community_id == community.id, Membership.status == "pending_ritual"
    ).with_for_update())).scalars().all()
    for member in rows:
        member.status, member.status_reason = "active", "joining ritual no longer required"
        await emit_member(session, ctx, "member.activated", member)
    return len(rows)
