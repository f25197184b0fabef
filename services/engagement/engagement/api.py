"""Engagement's HTTP routes."""

from __future__ import annotations

from fastapi import APIRouter
from qunzhu_common.deps import SessionDep
from qunzhu_common.errors import NotFound

from engagement.models import CommunityCopy, CommunityCopyPublic

router = APIRouter(prefix="/communities", tags=["communities"])


@router.get("/{community_id}", response_model=CommunityCopyPublic)
async def get_community(community_id: str, session: SessionDep) -> CommunityCopy:
    """Engagement's copy of a community (present once `community.created` was consumed)."""
    community = await session.get(CommunityCopy, community_id)
    if community is None:
        raise NotFound(f"engagement does not know community {community_id}")
    return community
