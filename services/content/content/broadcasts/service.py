"""Creating broadcasts and settling their deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.context import ContentContext
from content.errors import BroadcastNotFound
from content.models import Broadcast, BroadcastDelivery
from qunzhu_common.errors import InvalidInput
from qunzhu_common.events.contracts.content import BroadcastDelivered
from qunzhu_common.outbox import count_after_commit


async def create_broadcast(
    session: AsyncSession,
    *,
    ctx: ContentContext,
    community_id: str,
    group_ids: list[str],
    text: str,
    source: str,
    created_by: str,
    now: datetime,
    action: str = "send_message",
    mention_all: bool = False,
    audience: dict[str, Any] | None = None,
    source_ref: str | None = None,
    occurrence_id: str | None = None,
    relay_of_message_id: str | None = None,
    origin_sent_at: datetime | None = None,
) -> Broadcast:
    """One broadcast and one pending delivery per group, in the given (stable) order."""
    if not group_ids:
        raise InvalidInput("the audience has no groups", errors=[{"loc": ["body", "audience"], "msg": "no groups"}])
    broadcast = Broadcast(
        community_id=community_id,
        action=action,
        text=text,
        mention_all=mention_all,
        audience=audience or {},
        source=source,
        source_ref=source_ref,
        occurrence_id=occurrence_id,
        relay_of_message_id=relay_of_message_id,
        origin_sent_at=origin_sent_at,
        created_by=created_by,
        created_at=now,
    )
    # No flush here: the ids are made client-side, and the unit of work writes many broadcasts of a
    # scheduler batch (and their deliveries, after them by foreign key) in a few statements.
    session.add(broadcast)
    session.add_all(
        BroadcastDelivery(
            broadcast_id=broadcast.id,
            community_id=community_id,
            group_id=group_id,
            platform=group_id.split(":", 1)[0],
            position=position,
            next_attempt_at=now,
        )
        for position, group_id in enumerate(group_ids)
    )
    ctx.after_commit_wake_dispatcher(session)
    return broadcast


async def get_broadcast(session: AsyncSession, *, broadcast_id: str, community_id: str) -> Broadcast:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.community_id != community_id:
        raise BroadcastNotFound(f"broadcast {broadcast_id} does not exist")
    return broadcast


async def deliveries_of(session: AsyncSession, *, broadcast_id: str) -> list[BroadcastDelivery]:
    rows = await session.execute(
        select(BroadcastDelivery).where(BroadcastDelivery.broadcast_id == broadcast_id).order_by(BroadcastDelivery.seq)
    )
    return list(rows.scalars())


async def complete_settled(
    session: AsyncSession, *, ctx: ContentContext, broadcasts: list[Broadcast], now: datetime
) -> list[Broadcast]:
    """Mark delivered (and announce) each broadcast none of whose deliveries is pending any more."""
    open_ = {b.id: b for b in broadcasts if b.status != "delivered"}
    if not open_:
        return []
    rows = (
        await session.execute(
            select(BroadcastDelivery.broadcast_id, BroadcastDelivery.group_id, BroadcastDelivery.status)
            .where(BroadcastDelivery.broadcast_id.in_(list(open_)))
            .order_by(BroadcastDelivery.seq)
        )
    ).all()
    by_broadcast: dict[str, list[tuple[str, str]]] = {}
    for broadcast_id, group_id, status in rows:
        by_broadcast.setdefault(broadcast_id, []).append((group_id, status))
    done = []
    for broadcast_id, deliveries in by_broadcast.items():
        if any(status == "pending" for _, status in deliveries):
            continue
        broadcast = open_[broadcast_id]
        broadcast.status, broadcast.delivered_at = "delivered", now
        await ctx.outbox.emit(
            session,
            type="broadcast.delivered",
            community_id=broadcast.community_id,
            data=BroadcastDelivered(
                community_id=broadcast.community_id,
                broadcast_id=broadcast.id,
                source=broadcast.source,
                source_ref=broadcast.source_ref,
                group_ids=[g for g, _ in deliveries],
                sent=sum(1 for _, s in deliveries if s == "sent"),
                failed=sum(1 for _, s in deliveries if s == "failed"),
                failed_group_ids=[g for g, s in deliveries if s == "failed"],
                delivered_at=now,
            ),
        )
        done.append(broadcast)
    return done


async def settle(
    session: AsyncSession, *, ctx: ContentContext, action_id: str, ok: bool, error: str, now: datetime
) -> BroadcastDelivery | None:
    """The gateway carried out (or finally failed) a delivery's command; retry a failure while allowed."""
    delivery = await session.scalar(select(BroadcastDelivery).where(BroadcastDelivery.action_id == action_id))
    if delivery is None or delivery.status != "sent":
        return None  # not ours, or an answer to an attempt already superseded
    if ok:
        delivery.confirmed_at = now
        count_after_commit(session, ctx.metrics.deliveries.labels(delivery.platform, "confirmed"))
        return delivery
    delivery.last_error = error[:2000]
    broadcast = await session.get(Broadcast, delivery.broadcast_id)
    assert broadcast is not None
    if delivery.attempts < ctx.settings.delivery_max_attempts:
        backoff = ctx.settings.delivery_retry_backoff_s * 2 ** (delivery.attempts - 1)
        delivery.status, delivery.next_attempt_at = "pending", now + timedelta(seconds=backoff)
        count_after_commit(session, ctx.metrics.deliveries.labels(delivery.platform, "retried"))
        # The broadcast is open again; it is announced once more when this retry settles.
        broadcast.status = "delivering"
        ctx.after_commit_wake_dispatcher(session)
    else:
        delivery.status = "failed"
        count_after_commit(session, ctx.metrics.deliveries.labels(delivery.platform, "failed"))
        broadcast.status = "delivering"
        await complete_settled(session, ctx=ctx, broadcasts=[broadcast], now=now)
    return delivery
