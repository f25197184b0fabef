"""Celebrations: which congratulations a community posts, their wording and rate limits; the log."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from engagement.activities import celebrations as service
from engagement.activities.common import get_community
from engagement.activities.schemas import CelebrationPublic, CelebrationSettingsBody, CelebrationSettingsPublic
from engagement.api.deps import StaffOf
from engagement.models import Celebration
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/celebrations", tags=["activities"])


@router.get("/settings", response_model=CelebrationSettingsPublic)
async def get_settings(community_id: str, caller: StaffOf, session: SessionDep) -> CelebrationSettingsPublic:
    """The community's celebration settings (the defaults until changed; owner/admin)."""
    await get_community(session, community_id)
    conf = await service.settings_of(session, community_id)
    return CelebrationSettingsPublic(**conf.model_dump(), community_id=community_id)


@router.put("/settings", response_model=CelebrationSettingsPublic)
async def put_settings(community_id: str, caller: StaffOf, body: CelebrationSettingsBody, session: SessionDep
                       ) -> CelebrationSettingsPublic:
    """Switch kinds on or off, reword them ({name} {level} {title} {days} {rank} {years}), set the limits."""
    conf = await service.save_settings(session, community_id=community_id, body=body)
    return CelebrationSettingsPublic(**conf.model_dump(), community_id=community_id)


@router.get("", response_model=list[CelebrationPublic])
async def list_celebrations(community_id: str, caller: StaffOf, session: SessionDep, limit: int = 100
                            ) -> list[Celebration]:
    """Congratulations posted or skipped (with the reason), newest first (owner/admin)."""
    rows = await session.execute(select(Celebration).where(Celebration.community_id == community_id)
                                 .order_by(Celebration.created_at.desc(), Celebration.id.desc())
                                 .limit(max(1, min(limit, 1000))))
    return list(rows.scalars())
