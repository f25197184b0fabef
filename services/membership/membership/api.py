"""Membership's HTTP routes: dependencies → one service call → response model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from qunzhu_common.deps import OutboxDep, SessionDep

from membership import service
from membership.models import CommunitiesPublic, CommunityCreate, CommunityPublic

router = APIRouter(prefix="/communities", tags=["communities"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CommunityPublic)
async def create_community(body: CommunityCreate, session: SessionDep, outbox: OutboxDep) -> CommunityPublic:
    """Create a community; emits `community.created` to membership.events.v1."""
    community = await service.create_community(session, outbox=outbox, data=body)
    return CommunityPublic.model_validate(community, from_attributes=True)


@router.get("/{community_id}", response_model=CommunityPublic)
async def get_community(community_id: str, session: SessionDep) -> CommunityPublic:
    """One community by id."""
    community = await service.get_community(session, community_id=community_id)
    return CommunityPublic.model_validate(community, from_attributes=True)


@router.get("", response_model=CommunitiesPublic)
async def list_communities(
    session: SessionDep,
    owner_id: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CommunitiesPublic:
    """Communities, oldest first, optionally only those of one owner."""
    rows, count = await service.list_communities(session, owner_id=owner_id, offset=offset, limit=limit)
    return CommunitiesPublic(
        data=[CommunityPublic.model_validate(c, from_attributes=True) for c in rows], count=count
    )
