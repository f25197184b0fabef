"""Reconciliation flags (people in paid groups without a membership) and queued removals."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from membership.deps import ActorDep, CtxDep, PersonDep, SessionDep
from membership.models import Body
from membership.models.ops import RemovalReviewPublic, ReviewVerdict, UnpaidJoinPublic
from membership.service import reconcile, removal
from membership.service.access import authorize, load_community

router = APIRouter(tags=["moderation"])


class FlagDecision(Body):
    decision: Literal["remove", "dismiss", "keep"] = Field(
        description="`remove` asks the bot to remove them; `dismiss` (or `keep`) leaves them in the group. "
                    "Allowed while the flag is pending (its grace running) or open.")


@router.get("/communities/{community_id}/unpaid-joins", response_model=list[UnpaidJoinPublic])
async def list_unpaid_joins(
    community_id: str, session: SessionDep, actor: ActorDep,
    state: Annotated[Literal["pending", "open", "cleared", "removed", "dismissed"] | None, Query()] = None,
) -> list[UnpaidJoinPublic]:
    """People seen in a paid chat group without an active membership (`reconciliation.view`).
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="reconciliation.view")
    rows = await reconcile.list_flags(session, community_id=community.id, state=state)
    return [UnpaidJoinPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/communities/{community_id}/unpaid-joins/{flag_id}/decision", response_model=UnpaidJoinPublic)
async def decide_unpaid_join(community_id: str, flag_id: str, body: FlagDecision, session: SessionDep,
                             ctx: CtxDep, actor: PersonDep) -> UnpaidJoinPublic:
    """Remove the person from the group or dismiss (keep) them (`member.remove.member`), at any time: during
    the grace too, which only delays the automatic action (it then does nothing). 409 once decided.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="member.remove.member")
    flag = await reconcile.decide_flag(session, ctx, community=community, flag_id=flag_id,
                                       remove=body.decision == "remove", decided_by=actor.recorded_as)
    return UnpaidJoinPublic.model_validate(flag, from_attributes=True)


@router.get("/communities/{community_id}/removal-reviews", response_model=list[RemovalReviewPublic])
async def list_removal_reviews(
    community_id: str, session: SessionDep, actor: ActorDep,
    state: Annotated[Literal["pending", "approved", "dismissed"] | None, Query()] = "pending",
) -> list[RemovalReviewPublic]:
    """Removals recommended by engagement waiting for a decision (`member.review`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="member.review")
    return [RemovalReviewPublic.model_validate(r, from_attributes=True)
            for r in await removal.list_reviews(session, community_id=community.id, state=state)]


@router.post("/communities/{community_id}/removal-reviews/{review_id}/decision", response_model=RemovalReviewPublic)
async def decide_removal(community_id: str, review_id: str, body: ReviewVerdict, session: SessionDep, ctx: CtxDep,
                         actor: PersonDep) -> RemovalReviewPublic:
    """Approve (the member is removed with the recommendation's reason) or dismiss (`member.review`).
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True)
    member = await authorize(session, community=community, actor=actor, action="member.review")
    assert member is not None
    review = await removal.decide(session, ctx=ctx, community=community, actor=member, review_id=review_id,
                                  approve=body.decision == "approve", decided_by=actor.recorded_as)
    return RemovalReviewPublic.model_validate(review, from_attributes=True)
