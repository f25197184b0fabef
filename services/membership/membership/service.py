"""Membership's domain logic: async functions, session first, keyword-only; never commit."""

from __future__ import annotations

from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.outbox import OutboxWriter
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from membership.errors import CommunityNotFound
from membership.models import Community, CommunityCreate


async def create_community(
    session: AsyncSession, *, outbox: OutboxWriter, data: CommunityCreate
) -> Community:
    community = Community.model_validate(data)
    session.add(community)
    await session.flush()
    await outbox.emit(
        session,
        type="community.created",
        community_id=community.id,
        data=CommunityCreated(
            community_id=community.id,
            name=community.name,
            positioning=community.positioning,
            owner_id=community.owner_id,
            timezone=community.timezone,
            entry_policies=community.entry_policies,
            created_at=community.created_at,
        ),
    )
    return community


async def get_community(session: AsyncSession, *, community_id: str) -> Community:
    community = await session.get(Community, community_id)
    if community is None:
        raise CommunityNotFound(f"community {community_id} does not exist")
    return community


async def list_communities(
    session: AsyncSession, *, owner_id: str | None, offset: int, limit: int
) -> tuple[list[Community], int]:
    query = select(Community)
    count_query = select(func.count()).select_from(Community)
    if owner_id is not None:
        query = query.where(Community.owner_id == owner_id)
        count_query = count_query.where(Community.owner_id == owner_id)
    rows = (await session.execute(query.order_by(Community.created_at, Community.id).offset(offset).limit(limit)))
    count = await session.scalar(count_query)
    return list(rows.scalars().all()), int(count or 0)
