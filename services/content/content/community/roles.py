"""Who holds which role in a community, as content sees it: the common authorizer over content's own
projection of membership's roles (`community_member`), shared by route dependencies and services."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from content.models import CommunityMember
from qunzhu_common.actor import Authorizer
from qunzhu_common.deps import SessionDep


async def projected_role(session: AsyncSession, community_id: str, person_id: str) -> tuple[str, str] | None:
    """(role, status) of a person in content's copy of membership's roles; None if content never saw them."""
    member = await session.get(CommunityMember, (community_id, person_id))
    return None if member is None else (member.role, member.status)


def _route_session(session: SessionDep) -> AsyncSession:
    # The route's own transaction: SQLite runs with a one-connection pool, so the role check must not
    # open a second session (it would wait for the first one forever), and a plain function keeps
    # FastAPI's cache key equal to the route's `SessionDep`.
    return session


authorizer = Authorizer(projected_role, _route_session)
