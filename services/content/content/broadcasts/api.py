"""Broadcast routes: send one message to many groups now, and see each group's delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from content.broadcasts import service
from content.community.service import Audience, get_community, resolve_audience
from content.deps import ContextDep, StaffOf
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/broadcasts", tags=["broadcasts"])


class BroadcastCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20000)
    audience: Audience = Field(default_factory=Audience)
    action: Literal["send_message", "announce"] = "send_message"
    mention_all: bool = False


class DeliveryPublic(BaseModel):
    group_id: str
    position: int
    status: str
    attempts: int
    last_error: str
    sent_at: datetime | None
    confirmed_at: datetime | None


class BroadcastPublic(BaseModel):
    id: str
    community_id: str
    action: str
    text: str
    source: str
    source_ref: str | None
    status: str
    created_at: datetime
    delivered_at: datetime | None
    deliveries: list[DeliveryPublic]


async def _public(session, broadcast) -> BroadcastPublic:
    deliveries = await service.deliveries_of(session, broadcast_id=broadcast.id)
    return BroadcastPublic(
        **broadcast.model_dump(include=set(BroadcastPublic.model_fields) - {"deliveries"}),
        deliveries=[DeliveryPublic(**d.model_dump(include=set(DeliveryPublic.model_fields))) for d in deliveries],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BroadcastPublic)
async def create_broadcast(
    community_id: str, body: BroadcastCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> BroadcastPublic:
    """Broadcast now to the audience's groups (owner/admin): one bot command per group, tracked per group."""
    await get_community(session, community_id=community_id)
    groups = await resolve_audience(session, community_id=community_id, audience=body.audience)
    broadcast = await service.create_broadcast(
        session,
        ctx=ctx,
        community_id=community_id,
        group_ids=groups,
        text=body.text,
        action=body.action,
        mention_all=body.mention_all,
        audience=body.audience.model_dump(),
        source="manual",
        created_by=caller.actor.id,
        now=ctx.clock.now(),
    )
    return await _public(session, broadcast)


@router.get("/{broadcast_id}", response_model=BroadcastPublic)
async def get_broadcast(community_id: str, broadcast_id: str, session: SessionDep, caller: StaffOf) -> BroadcastPublic:
    """A broadcast and the status of each group's delivery (pending / sent / failed), in fan-out order (owner/admin)."""
    broadcast = await service.get_broadcast(session, broadcast_id=broadcast_id, community_id=community_id)
    return await _public(session, broadcast)
