"""Ops view of bot actions: what is pending, what completed, what failed for good (the dead letters)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from gateway.auth.deps import PlatformOperator
from gateway.models import BotAction
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/api/v1/ops", tags=["operations"])


class BotActionPublic(BaseModel):
    action_id: str
    community_id: str
    group_id: str
    action: str
    status: str
    attempts: int
    last_error: str
    request: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    settled_at: datetime | None


class BotActionPage(BaseModel):
    data: list[BotActionPublic]
    count: int


@router.get("/bot-actions", response_model=BotActionPage)
async def list_bot_actions(
    session: SessionDep,
    _operator: PlatformOperator,
    status: Literal["pending", "completed", "failed"] | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BotActionPage:
    """Bot actions, newest first; `status=failed` lists the dead letters (platform operators)."""
    query, count = select(BotAction), select(func.count()).select_from(BotAction)
    if status is not None:
        query, count = query.where(BotAction.status == status), count.where(BotAction.status == status)
    rows = (await session.execute(query.order_by(BotAction.created_at.desc()).offset(offset).limit(limit))).scalars()
    return BotActionPage(data=[BotActionPublic.model_validate(r, from_attributes=True) for r in rows],
                         count=int(await session.scalar(count) or 0))
