"""Creating broadcasts, settling their deliveries, and what their status adds up to.

A delivery goes pending → sent (one `chat.action.requested`, never re-sent by content) → confirmed |
failed, on the gateway's final `chat.action.completed` / `chat.action.failed`. The gateway's bot-action
worker is the one place that retries; a delivery without a final answer `delivery_gives_up_after_s` after
it was sent fails with "no final answer from the gateway".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
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


BROADCAST_STATUSES = ("sending", "delivered", "partially_delivered", "failed")
"""sending: a group has no final answer yet; delivered: every group confirmed; partially_delivered: some
confirmed, the others failed for good; failed: every group failed for good."""


def counts_of(statuses: list[str]) -> dict[str, int]:
    """A broadcast's counts from its deliveries' statuses (pending/sent are both still `pending`)."""
    confirmed = sum(1 for s in statuses if s == "confirmed")
    failed = sum(1 for s in statuses if s == "failed")
    return {
        "groups_total": len(statuses),
        "delivered": confirmed,
        "failed": failed,
        "pending": len(statuses) - confirmed - failed,
    }


def status_of(counts: dict[str, int]) -> str:
    if counts["pending"]:
        return "sending"
    if not counts["failed"]:
        return "delivered"
    return "failed" if not counts["delivered"] else "partially_delivered"


async def counts_for(session: AsyncSession, *, broadcast_ids: list[str]) -> dict[str, dict[str, int]]:
    """Each broadcast's counts (groups_total, delivered, failed, pending), in one query."""
    rows = (
        await session.execute(
            select(BroadcastDelivery.broadcast_id, BroadcastDelivery.status, func.count())
            .where(BroadcastDelivery.broadcast_id.in_(broadcast_ids))
            .group_by(BroadcastDelivery.broadcast_id, BroadcastDelivery.status)
        )
    ).all()
    statuses: dict[str, list[str]] = {b: [] for b in broadcast_ids}
    for broadcast_id, status, n in rows:
        statuses[broadcast_id].extend([status] * n)
    return {b: counts_of(s) for b, s in statuses.items()}


async def list_broadcasts(
    session: AsyncSession,
    *,
    community_id: str,
    status: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    sent_from: datetime | None = None,
    sent_to: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Broadcast], int]:
    """A community's broadcasts, newest first, and how many match. Time windows are [from, to); "sent"
    means a group's command went out within the window."""
    where: list[Any] = [Broadcast.community_id == community_id]
    if status is not None:
        where.append(Broadcast.status.in_((status, "delivering") if status == "sending" else (status,)))
    if created_from is not None:
        where.append(Broadcast.created_at >= created_from)
    if created_to is not None:
        where.append(Broadcast.created_at < created_to)
    if sent_from is not None or sent_to is not None:
        sent = select(BroadcastDelivery.broadcast_id).where(BroadcastDelivery.community_id == community_id)
        if sent_from is not None:
            sent = sent.where(BroadcastDelivery.sent_at >= sent_from)
        if sent_to is not None:
            sent = sent.where(BroadcastDelivery.sent_at < sent_to)
        where.append(Broadcast.id.in_(sent))
    count = await session.scalar(select(func.count()).select_from(Broadcast).where(*where))
    rows = await session.execute(
        select(Broadcast)
        .where(*where)
        .order_by(Broadcast.created_at.desc(), Broadcast.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows.scalars()), int(count or 0)


async def complete_settled(
    session: AsyncSession, *, ctx: ContentContext, broadcasts: list[Broadcast], now: datetime
) -> list[Broadcast]:
    """Give each broadcast the status its deliveries add up to; announce (`broadcast.delivered`, once)
    those that have just got a final answer from every group. Returns the ones announced now."""
    if not broadcasts:
        return []
    by_id = {b.id: b for b in broadcasts}
    rows = (
        await session.execute(
            select(BroadcastDelivery.broadcast_id, BroadcastDelivery.group_id, BroadcastDelivery.status)
            .where(BroadcastDelivery.broadcast_id.in_(list(by_id)))
            .order_by(BroadcastDelivery.seq)
        )
    ).all()
    by_broadcast: dict[str, list[tuple[str, str]]] = {}
    for broadcast_id, group_id, status in rows:
        by_broadcast.setdefault(broadcast_id, []).append((group_id, status))
    done = []
    for broadcast_id, deliveries in by_broadcast.items():
        broadcast = by_id[broadcast_id]
        counts = counts_of([s for _, s in deliveries])
        status = status_of(counts)
        was_open = broadcast.status in ("sending", "delivering")
        broadcast.status = status
        if status == "sending" or not was_open:
            # Still waiting; or an answer after the give-up time corrected a broadcast already announced
            # (its status and counts follow; it is not announced twice).
            continue
        broadcast.delivered_at = now
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
                sent=counts["delivered"],
                failed=counts["failed"],
                failed_group_ids=[g for g, s in deliveries if s == "failed"],
                delivered_at=now,
                status=status,
            ),
        )
        done.append(broadcast)
    return done


async def settle(
    session: AsyncSession, *, ctx: ContentContext, action_id: str, ok: bool, error: str, now: datetime
) -> BroadcastDelivery | None:
    """The gateway's final answer for a delivery's command: confirmed, or failed for good.

    The gateway's bot-action worker is the one place that retries (`CONTENT_DELIVERY_GIVES_UP_AFTER_S`
    covers its whole budget), so a failure here is final. Idempotent: a repeated answer changes nothing;
    a confirmation arriving after the give-up time still counts (the message did reach the group).
    """
    delivery = await session.scalar(select(BroadcastDelivery).where(BroadcastDelivery.action_id == action_id))
    if delivery is None:
        return None  # not ours
    late = delivery.status == "failed" and delivery.last_error.startswith(NO_ANSWER)
    if not (delivery.status == "sent" or (ok and late)):
        return None  # already settled (a redelivered or repeated answer)
    if ok:
        delivery.status, delivery.confirmed_at = "confirmed", now
        count_after_commit(session, ctx.metrics.deliveries.labels(delivery.platform, "confirmed"))
    else:
        delivery.status, delivery.last_error = "failed", error[:2000]
        count_after_commit(session, ctx.metrics.deliveries.labels(delivery.platform, "failed"))
    broadcast = await session.get(Broadcast, delivery.broadcast_id)
    assert broadcast is not None
    await complete_settled(session, ctx=ctx, broadcasts=[broadcast], now=now)
    return delivery


NO_ANSWER = "no final answer from the gateway"


async def claim_due(session: AsyncSession, *, status: str, now: datetime, limit: int) -> list[BroadcastDelivery]:
    """Deliveries in `status` whose `next_attempt_at` has come, oldest first, locked for this transaction
    (rows another replica holds are skipped): what is due to send (`pending`) or to give up (`sent`)."""
    return list(
        (
            await session.execute(
                select(BroadcastDelivery)
                .where(BroadcastDelivery.status == status, BroadcastDelivery.next_attempt_at <= now)
                .order_by(BroadcastDelivery.seq)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )


async def give_up_unanswered(session: AsyncSession, *, ctx: ContentContext, now: datetime) -> int:
    """Sent deliveries still unanswered at their give-up time (`next_attempt_at` once sent) fail."""
    rows = await claim_due(session, status="sent", now=now, limit=ctx.settings.dispatch_batch)
    if not rows:
        return 0
    after = ctx.settings.delivery_gives_up_after_s
    for delivery in rows:
        delivery.status, delivery.last_error = "failed", f"{NO_ANSWER} within {after:g} s"
        count_after_commit(session, ctx.metrics.deliveries.labels(delivery.platform, "failed"))
    broadcasts = (
        await session.execute(select(Broadcast).where(Broadcast.id.in_({d.broadcast_id for d in rows})))
    ).scalars()
    await complete_settled(session, ctx=ctx, broadcasts=list(broadcasts), now=now)
    return len(rows)
