"""The paywall's access decision, for the content service and the gateway."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from membership.deps import ActorDep, CtxDep, SessionDep
from membership.service.access import authorize, load_community
from membership.service.paywall import AccessDecision, Resource, check_access

router = APIRouter(tags=["paywall"])


@router.get("/communities/{community_id}/access", response_model=AccessDecision)
async def access(
    community_id: str, session: SessionDep, ctx: CtxDep, actor: ActorDep,
    member_id: Annotated[str, Query(min_length=3, max_length=200, description="Whose access.")],
    tier: Annotated[str | None, Query(max_length=50, description="The resource's tier; none = any member.")] = None,
    min_level: Annotated[int, Query(ge=0, le=1000, description="Engagement level the resource needs.")] = 0,
    member_level: Annotated[int, Query(ge=0, le=1000, description="The member's engagement level (caller "
                                                                  "knows it from engagement).")] = 0,
    published_at: Annotated[AwareDatetime | None, Query(description="When the resource was published "
                                                                     "(reading limit).")] = None,
) -> AccessDecision:
    """May `member_id` read a resource of this tier, level and age? `allowed` plus a stable `reason`:
    ok, grace, staff, not_a_member, application_pending, application_rejected, payment_required,
    ritual_pending, expired, removed, blacklisted, paused, tier_required, level_required, reading_limit,
    community_dissolved. Asked by the member themself, staff (`paywall.check`) or an internal service
    (`X-Actor-Id: service:<name>`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    if actor.id != member_id and not actor.is_service:
        await authorize(session, community=community, actor=actor, action="paywall.check")
    return await check_access(session, community=community, member_id=member_id,
                              resource=Resource(tier=tier, min_level=min_level, published_at=published_at),
                              member_level=member_level, now=ctx.now())


_ = datetime
