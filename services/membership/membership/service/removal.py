"""Removal recommended by engagement (part 11): policy `auto` removes at once, `review` queues it for the
owner or an admin. Every removal has a reason and emits `member.removed` plus bot remove commands."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.errors import InvalidState, PermissionDenied, ResourceNotFound
from membership.models import Community, Membership, RemovalReview
from membership.models.member import LIVE_STATUSES
from membership.service.access import can, find_membership
from membership.service.lifecycle import end_membership
from qunzhu_common.events.contracts.membership import RemovalReviewChanged

log = logging.getLogger(__name__)


async def _emit(session: AsyncSession, ctx: MembershipContext, review: RemovalReview, type_: str) -> None:
    await ctx.outbox.emit(
        session, type=type_, community_id=review.community_id,
        data=RemovalReviewChanged(community_id=review.community_id, review_id=review.id, member_id=review.member_id,
                                  reason=review.reason, source=review.source, state=review.state,  # type: ignore[arg-type]
                                  decided_by=review.decided_by, changed_at=ctx.now()),
    )


async def on_recommended(session: AsyncSession, ctx: MembershipContext, *, community_id: str,
                         recommendation_id: str, member_id: str, reason: str) -> None:
    community = await session.get(Community, community_id)
    member = await find_membership(session, community_id, member_id, for_update=True)
    if community is None or member is None or member.status not in LIVE_STATUSES:
        log.info("removal of %s in %s recommended but not a live member; ignored", member_id, community_id)
        return
    if member.role != "member":
        log.info("removal of %s (%s) recommended; staff are never removed by recommendation", member_id,
                 member.role)
        return
    text = f"engagement: {reason}"
    if community.removal_policy == "auto":
        await end_membership(session, ctx, community=community, member=member, status="removed", reason=text,
                             code="engagement", cause=f"recommended:{recommendation_id}")
        return
    if (await session.execute(select(RemovalReview.id).where(
        RemovalReview.community_id == community_id, RemovalReview.member_id == member_id,
        RemovalReview.state == "pending",
    ))).first() is not None:
        return  # one pending review per member is enough
    review = RemovalReview(community_id=community_id, member_id=member_id, reason=text, source="engagement",
                           source_ref=recommendation_id, created_at=ctx.now())
    session.add(review)
    await session.flush()
    await _emit(session, ctx, review, "removal.queued")


async def list_reviews(session: AsyncSession, *, community_id: str, state: str | None) -> list[RemovalReview]:
    query = select(RemovalReview).where(RemovalReview.community_id == community_id)
    if state is not None:
        query = query.where(RemovalReview.state == state)
    return list((await session.execute(query.order_by(RemovalReview.created_at).limit(500))).scalars().all())


async def decide(session: AsyncSession, *, ctx: MembershipContext, community: Community, actor: Membership,
                 review_id: str, approve: bool, decided_by: str | None = None) -> RemovalReview:
    review = await session.get(RemovalReview, review_id, with_for_update=True)
    if review is None or review.community_id != community.id:
        raise ResourceNotFound(f"removal review {review_id} not found in this community")
    if review.state != "pending":
        raise InvalidState(f"removal review {review_id} was already {review.state}")
    member: Membership | None = await find_membership(session, community.id, review.member_id, for_update=True)
    if approve and member is not None and member.status in LIVE_STATUSES:
        if not can(actor, community, f"member.remove.{member.role}"):
            raise PermissionDenied(f"a {actor.role} may not remove a {member.role}",
                                   action=f"member.remove.{member.role}")
        await end_membership(session, ctx, community=community, member=member, status="removed",
                             reason=review.reason, code=review.source, cause=f"review:{review.id}")
    review.state = "approved" if approve else "dismissed"
    review.decided_by, review.decided_at = decided_by or actor.member_id, ctx.now()
    await session.flush()
    await _emit(session, ctx, review, "removal.reviewed")
    return review
