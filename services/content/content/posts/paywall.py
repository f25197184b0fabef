"""THE PAYWALL HOOK: may this reader read this post?

Membership is building the access-decision API (it owns plans, tiers and their order). Until it
exists, `decide_read_access` decides from content's own projection of member.* events: the author and
those who author in the community (owner, admins, guests — and so the platform operator and API keys
of those roles) always read; an active member reads free posts and posts of exactly their tier; an API
key of the member role reads free posts (a key holds no tier). Replace the body of this one function
with a call to membership's decision when it lands; callers stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from content.community.service import AUTHORS, member_of, role_of
from content.models import Post
from qunzhu_common.actor import Actor


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str
    needs_payment: bool = False


async def decide_read_access(session: AsyncSession, *, post: Post, reader: Actor) -> AccessDecision:
    if reader.id == post.author_id:
        return AccessDecision(True, "author")
    role = await role_of(session, community_id=post.community_id, actor=reader)
    if role in AUTHORS:
        return AccessDecision(True, f"{role}")
    if not reader.is_person:  # an API key or a service: no membership to pay for
        if role is not None and not post.required_tier:
            return AccessDecision(True, "free for members")
        return AccessDecision(False, f"{reader.kind} {reader.id} has no {post.required_tier or 'member'} access")
    member = await member_of(session, community_id=post.community_id, person_id=reader.id)
    if member is None or member.status != "active":
        return AccessDecision(False, "not an active member of the community", needs_payment=True)
    if not post.required_tier:
        return AccessDecision(True, "free for members")
    if member.tier == post.required_tier:
        return AccessDecision(True, f"tier {member.tier}")
    return AccessDecision(
        False, f"needs tier {post.required_tier!r}, has {member.tier or 'none'!r}", needs_payment=True
    )
