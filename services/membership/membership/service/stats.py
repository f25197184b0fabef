"""Member figures for the owner's overview: members by status, role and tier; joins, renewals and expiries
in a period; terms ending soon. Counted in the database (GROUP BY), never by loading every membership."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.models import Membership
from membership.models.member import LIVE_STATUSES
from membership.models.payment import Payment

SOON = timedelta(days=7)


async def _grouped(session: AsyncSession, column, community_id: str, *where) -> dict[str, int]:  # noqa: ANN001
    rows = await session.execute(select(column, func.count()).where(Membership.community_id == community_id, *where)
                                 .group_by(column))
    return {str(key or ""): int(n) for key, n in rows.all()}


async def _count(session: AsyncSession, model, *where) -> int:  # noqa: ANN001
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def member_stats(session: AsyncSession, *, community_id: str, since: datetime, until: datetime) -> dict:
    """Counts for [since, until]: who joined (joined_at), renewed (a renewal payment applied), whose term
    ended (expires_at passed, status expired); and live members whose term ends within 7 days of `until`."""
    by_status = await _grouped(session, Membership.status, community_id)
    live = Membership.status.in_(LIVE_STATUSES)
    return {
        "community_id": community_id, "since": since, "until": until,
        "members": sum(by_status.values()),
        "live": sum(n for status, n in by_status.items() if status in LIVE_STATUSES),
        "by_status": by_status,
        "by_role": await _grouped(session, Membership.role, community_id, live),
        "by_tier": await _grouped(session, Membership.tier, community_id, live),
        "joined": await _count(session, Membership, Membership.community_id == community_id,
                               Membership.joined_at >= since, Membership.joined_at <= until),
        "renewed": await _count(session, Payment, Payment.community_id == community_id, Payment.kind == "renewal",
                                Payment.paid_at >= since, Payment.paid_at <= until),
        "expired": await _count(session, Membership, Membership.community_id == community_id,
                                Membership.status == "expired", Membership.expires_at >= since,
                                Membership.expires_at <= until),
        "expiring_soon": await _count(session, Membership, Membership.community_id == community_id, live,
                                      Membership.expires_at > until, Membership.expires_at <= until + SOON),
    }
