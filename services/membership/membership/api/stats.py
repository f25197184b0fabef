"""Member figures for the owner's overview (the console's first page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from membership.deps import ActorDep, CtxDep, SessionDep
from membership.errors import BadInput
from membership.service import stats
from membership.service.access import authorize, load_community

router = APIRouter(tags=["members"])
MAX_PERIOD = timedelta(days=366)
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


class MemberStats(BaseModel):
    community_id: str
    since: datetime
    until: datetime
    members: int = Field(description="Every membership, whatever its status.")
    live: int = Field(description="Memberships that count (pending_ritual, active).")
    by_status: dict[str, int]
    by_role: dict[str, int] = Field(description="Live memberships by role.")
    by_tier: dict[str, int] = Field(description="Live memberships by tier ('' for none).")
    joined: int = Field(description="Joined in [since, until].")
    renewed: int = Field(description="Renewal payments applied in [since, until].")
    expired: int = Field(description="Terms that ended in [since, until] and were not renewed.")
    expiring_soon: int = Field(description="Live memberships whose term ends within 7 days after `until`.")


@router.get("/communities/{community_id}/member-stats", response_model=MemberStats)
async def member_stats(
    community_id: str, session: SessionDep, ctx: CtxDep, actor: ActorDep,
    since: Annotated[AwareDatetime | None, Query(description="Start of the period (default: 7 days before until).")]
    = None,
    until: Annotated[AwareDatetime | None, Query(description="End of the period (default: now).")] = None,
) -> MemberStats:
    """Members by status, role and tier; joins, renewals and expiries in a period (default the last 7 days);
    terms ending in the 7 days after it (`member.view_status`: owner and admins)."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="member.view_status")
    end = until or ctx.now()
    if not EARLIEST <= end <= LATEST or (since is not None and not EARLIEST <= since <= LATEST):
        raise BadInput(f"since and until must lie between {EARLIEST:%Y} and {LATEST:%Y}")  # no overflow below
    start = since or end - timedelta(days=7)
    if not start < end or end - start > MAX_PERIOD:
        raise BadInput("since must be before until, at most 366 days apart")
    return MemberStats(**await stats.member_stats(session, community_id=community.id, since=start, until=end))
