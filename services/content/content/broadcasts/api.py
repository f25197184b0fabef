"""Broadcast routes: send one message to many groups now, list them, and see each group's delivery.

A broadcast's status adds up its groups' final answers: `sending` while a group has none yet, then
`delivered` (every group confirmed), `partially_delivered` (some confirmed, the others failed for good)
or `failed` (every group failed). Content sends each group's bot command once; the gateway retries it
within its own budget, and a group still unanswered `gives_up_after_s` after its command went out is
counted failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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


BroadcastStatus = Literal["sending", "delivered", "partially_delivered", "failed"]
MAX_LIMIT = 200


class DeliveryPublic(BaseModel):
    group_id: str
    position: int
    status: str = Field(description="pending | sent (awaiting the gateway's final answer) | confirmed | failed")
    attempts: int = Field(description="Commands content issued for this group (one; the gateway retries it).")
    last_error: str
    sent_at: datetime | None
    confirmed_at: datetime | None


class BroadcastCounts(BaseModel):
    groups_total: int
    delivered: int = Field(description="Groups whose delivery the gateway confirmed.")
    failed: int = Field(description="Groups whose delivery failed for good.")
    pending: int = Field(description="Groups without a final answer yet.")


class BroadcastSummary(BroadcastCounts):
    id: str
    community_id: str
    action: str
    text: str
    source: str
    source_ref: str | None
    status: BroadcastStatus
    created_at: datetime
    delivered_at: datetime | None = Field(description="When every group had given its final answer.")
    gives_up_after_s: float = Field(
        description="A group without a final answer this long after its command went out counts as failed."
    )


class BroadcastPublic(BroadcastSummary):
    deliveries: list[DeliveryPublic]


class BroadcastsPublic(BaseModel):
    data: list[BroadcastSummary]
    count: int = Field(description="Broadcasts matching the filters (all pages).")
    offset: int
    limit: int


def _summary(broadcast, counts: dict[str, int], gives_up_after_s: float) -> dict:
    fields = set(BroadcastSummary.model_fields) - set(BroadcastCounts.model_fields) - {"status", "gives_up_after_s"}
    return dict(
        **broadcast.model_dump(include=fields),
        **counts,
        status=service.status_of(counts),
        gives_up_after_s=gives_up_after_s,
    )


async def _public(session, ctx, broadcast) -> BroadcastPublic:
    deliveries = await service.deliveries_of(session, broadcast_id=broadcast.id)
    counts = service.counts_of([d.status for d in deliveries])
    return BroadcastPublic(
        **_summary(broadcast, counts, ctx.settings.delivery_gives_up_after_s),
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
        created_by=caller.actor.recorded_as,
        now=ctx.clock.now(),
    )
    return await _public(session, ctx, broadcast)


@router.get("", response_model=BroadcastsPublic)
async def list_broadcasts(
    community_id: str,
    session: SessionDep,
    ctx: ContextDep,
    caller: StaffOf,
    status_: Annotated[BroadcastStatus | None, Query(alias="status")] = None,
    created_from: Annotated[
        AwareDatetime | None, Query(description="Created at or after (ISO 8601 with offset).")
    ] = None,
    created_to: Annotated[AwareDatetime | None, Query(description="Created before.")] = None,
    sent_from: Annotated[AwareDatetime | None, Query(description="A group's command went out at or after.")] = None,
    sent_to: Annotated[AwareDatetime | None, Query(description="A group's command went out before.")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}.")] = 50,
) -> BroadcastsPublic:
    """The community's broadcasts, newest first, with their status and counts (owner/admin); filter by
    status and by created / sent time windows ([from, to)); page with offset/limit (limit at most 200)."""
    await get_community(session, community_id=community_id)
    window = {"created_from": created_from, "created_to": created_to, "sent_from": sent_from, "sent_to": sent_to}
    rows, count = await service.list_broadcasts(
        session, community_id=community_id, status=status_, offset=offset, limit=limit, **window
    )
    counts = await service.counts_for(session, broadcast_ids=[b.id for b in rows])
    after = ctx.settings.delivery_gives_up_after_s
    return BroadcastsPublic(
        data=[BroadcastSummary(**_summary(b, counts[b.id], after)) for b in rows],
        count=count,
        offset=offset,
        limit=limit,
    )


@router.get("/{broadcast_id}", response_model=BroadcastPublic)
async def get_broadcast(
    community_id: str, broadcast_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> BroadcastPublic:
    """A broadcast, its counts, and each group's delivery (pending / sent / confirmed / failed) in fan-out
    order (owner/admin)."""
    broadcast = await service.get_broadcast(session, broadcast_id=broadcast_id, community_id=community_id)
    return await _public(session, ctx, broadcast)
