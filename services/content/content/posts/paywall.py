"""THE PAYWALL HOOK: may this person read this post?

Membership is building the access-decision API (it owns plans, tiers and their order). Until it
exists, `decide_read_access` decides from content's own projection of member.* events: staff and the
author always read; an active member reads free posts and posts of exactly their tier. Replace the
body of this one function with a call to membership's decision when it lands; callers stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from content.community.service import AUTHORS, member_of
from content.models import Post


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str
    needs_payment: bool = False


async def decide_read_access(session: AsyncSession, *, post: Post, reader_id: str) -> AccessDecision:
    if reader_id == post.author_id:
        return AccessDecision(True, "author")
    member = await member_of(session, community_id=post.community_id, person_id=reader_id)
    if member is None or member.status != "active":
        return AccessDecision(False, "not an active member of the community", needs_payment=True)
    if member.role in AUTHORS:
        return AccessDecision(True, f"{member.role}")
    if not post.required_tier:
        return AccessDecision(True, "free for members")
    if member.tier == post.required_tier:
        return AccessDecision(True, f"tier {member.tier}")
    return AccessDecision(
        False, f"needs tier {post.required_tier!r}, has {member.tier or 'none'!r}", needs_payment=True
    )
