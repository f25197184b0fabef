"""Engagement's copy of communities, and the replay check (architecture.md, "Replay")."""

from __future__ import annotations

from fastapi import APIRouter, Query

from engagement.api.deps import MemberOf, StaffOf
from engagement.api.schemas import ReplayPublic
from engagement.errors import CommunityNotFound
from engagement.models import CommunityCopy, CommunityCopyPublic
from engagement.scoring import replay
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities", tags=["communities"])


@router.get("/{community_id}", response_model=CommunityCopyPublic)
async def get_community(community_id: str, caller: MemberOf, session: SessionDep) -> CommunityCopy:
    """Engagement's copy of a community (present once `community.created` was consumed)."""
    community = await session.get(CommunityCopy, community_id)
    if community is None:
        raise CommunityNotFound(f"engagement does not know community {community_id}")
    return community


@router.post("/{community_id}/replay", response_model=ReplayPublic, tags=["operations"])
async def replay_community(
    community_id: str, caller: StaffOf, session: SessionDep,
    apply: bool = Query(False, description="Keep the rebuilt state."),
) -> ReplayPublic:
    """Rebuild the community's ledger and figures from its activity history and compare with the live state.

    By default the rebuild is a check that is rolled back; `apply=true` keeps it (repair after a bug fix).
    """
    before = await replay.snapshot(session, community_id=community_id)
    rows_before = await replay.ledger_rows(session, community_id=community_id)
    nested = await session.begin_nested()
    count = await replay.rebuild(session, community_id=community_id)
    after = await replay.snapshot(session, community_id=community_id)
    rows_after = await replay.ledger_rows(session, community_id=community_id)
    if apply:
        await nested.commit()
    else:
        await nested.rollback()
    differences = [
        f"{part}: {key}: live {before[part].get(key)!r} vs replay {after[part].get(key)!r}"
        for part in before
        for key in sorted(set(before[part]) | set(after[part]))
        if before[part].get(key) != after[part].get(key)
    ]
    return ReplayPublic(
        community_id=community_id, activities=count, equal=not differences,
        ledger_identical=rows_before == rows_after, applied=apply, differences=differences[:50],
    )
