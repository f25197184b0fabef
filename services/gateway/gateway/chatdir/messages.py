"""Message-level dedupe: a chat message is one (group, platform message id), whatever delivery carried it.

A delivery id only says "this HTTP request was seen". A bridge that re-posts the same chat message
with a new webhook-id (or a platform that re-sends an update under another id) would otherwise make a
second 作业 count again. The keys are claimed with one INSERT … ON CONFLICT DO NOTHING RETURNING in the
group commit's transaction, after the delivery ids: what comes back is new; within a batch the first
copy wins, so two copies arriving in the same batch are caught as well.

A recall (撤回) claims its message's key too and is always kept: a message whose recall arrived first (a
platform's retry can deliver it late) is then a repeat and never counts, in whichever order the two come.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.chatdir.models import ChatMessageSeen
from gateway.models import WebhookDelivery
from gateway.webhooks.ingest import Staged
from qunzhu_common.db.bulk import bulk_insert

_SEEN: Table = ChatMessageSeen.__table__  # type: ignore[attr-defined]
# The events that are a platform message (a reaction or a join names a message or a person, not a new one).
MESSAGE_EVENTS = ("chat.message.posted", "chat.command.issued")
RECALL_EVENTS = ("chat.message.recalled",)  # a tombstone: claims the key, is never itself a repeat


def message_key(event: Staged) -> tuple[str, str] | None:
    if event.type not in MESSAGE_EVENTS + RECALL_EVENTS:
        return None
    payload: Any = event.payload
    message_id = getattr(payload, "message_id", "") or ""
    return (payload.group_id, message_id) if message_id else None


async def claim_messages(
    session: AsyncSession, deliveries: Sequence[tuple[Any, list[tuple[int, Staged]]]], now: datetime,
) -> list[list[tuple[int, Staged]]]:
    """Per delivery, its (position, event) pairs less the messages already received."""
    first = _first_copies(deliveries)
    claimed: set[tuple[str, str]] = set()
    if first:
        # In key order: two replicas claiming overlapping keys lock them in the same order (no deadlock).
        rows = [dict(group_id=g, message_id=m, delivery_id=d.delivery_id, received_at=now)
                for (g, m), (d, _) in sorted(first.items(), key=lambda item: item[0])]
        make = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        fallback = make(_SEEN).on_conflict_do_nothing().returning(_SEEN.c.group_id, _SEEN.c.message_id)
        claimed = {(g, m) for g, m in await bulk_insert(
            session, _SEEN, rows, fallback=fallback, pg_tail="ON CONFLICT DO NOTHING",
            returning=("group_id", "message_id"))}
    return keep_first_copies(deliveries, claimed)


def _first_copies(deliveries: Sequence[tuple[Any, list[tuple[int, Staged]]]]) -> dict[tuple[str, str], Any]:
    """Each message key of the batch → (delivery, position) of its first copy, in delivery order."""
    first: dict[tuple[str, str], Any] = {}
    for delivery, events in deliveries:
        for position, event in events:
            key = message_key(event)
            if key is not None and key not in first:
                first[key] = (delivery, position)
    return first


def keep_first_copies(
    deliveries: Sequence[tuple[Any, list[tuple[int, Staged]]]], claimed: set[tuple[str, str]],
) -> list[list[tuple[int, Staged]]]:
    """Per delivery, its events less the messages whose key was not claimed by that very copy: the first
    copy (in delivery order, then position) of a key this batch claimed; recalls and non-messages stay."""
    first = _first_copies(deliveries)
    kept: list[list[tuple[int, Staged]]] = []
    for delivery, events in deliveries:
        mine = []
        for position, event in events:
            key = message_key(event)
            first_copy = key in claimed and first[key][0] is delivery and first[key][1] == position
            if key is None or event.type in RECALL_EVENTS or first_copy:
                mine.append((position, event))
        kept.append(mine)
    return kept


async def mark_repeated(session: AsyncSession, deliveries: Sequence[Any]) -> None:
    """Deliveries whose every message was a repeat: their dedupe row says so (outcome `duplicate`)."""
    for delivery in deliveries:
        await session.execute(update(WebhookDelivery).where(
            WebhookDelivery.source == delivery.source, WebhookDelivery.delivery_id == delivery.delivery_id,
        ).values(outcome="duplicate", event_count=0))
