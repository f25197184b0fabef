"""Recording many verified deliveries in one transaction with a few multi-row statements.

Per batch: one INSERT … ON CONFLICT DO NOTHING RETURNING claims the delivery ids (what comes back was
new; the rest are replays), one INSERT puts the claimed deliveries' events in the outbox, one INSERT
keeps the quarantined ones (the first two as `bulk_insert`s: column arrays on PostgreSQL, no statement
compiled per batch). Within a batch the first copy of a delivery wins, as it would one by one.
Between the claim and the outbox, in the same transaction: the claimed deliveries' messages claim their
(group, platform message id) keys (a message re-sent under a new delivery id is dropped, even when both
copies are in this batch), and the names directory learns names and resolves @-names (gateway.chatdir).

This is the general path, on a SQLAlchemy session. On PostgreSQL most batches take the fast path instead
(gateway.webhooks.fastpath: BEGIN, one statement, COMMIT on asyncpg's own connection); a batch it cannot
write — a quarantined delivery, an @-name, a pending mention — comes here, and writes exactly the same
(tests/integration/test_gateway_ingest_postgres.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.chatdir import directory
from gateway.chatdir.messages import claim_messages, mark_repeated
from gateway.models import QuarantinedWebhook, WebhookDelivery
from gateway.webhooks.ingest import EVENT_ID_NAMESPACE, Outcome, Staged
from qunzhu_common.context import current_correlation_id
from qunzhu_common.db.bulk import bulk_insert
from qunzhu_common.events.envelope import Envelope, encode_envelope
from qunzhu_common.events.registry import EventRegistry, key_by_community
from qunzhu_common.ids import uuid5_str
from qunzhu_common.outbox import run_after_commit
from qunzhu_common.timeutil import utcnow

_DELIVERY: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
_QUARANTINE: Table = QuarantinedWebhook.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Delivery:
    source: str
    platform: str
    delivery_id: str
    events: Sequence[Staged] = ()
    quarantine_reason: str | None = None
    payload: bytes = b""
    correlation_id: str | None = None  # the request's: the writer runs in its own task
    replay: Mapping[str, Any] | None = None  # a quarantined one: what re-verifying it needs (headers, query…)

    @property
    def status(self) -> str:
        if self.quarantine_reason is not None:
            return "quarantined"
        return "accepted" if self.events else "ignored"


def first_deliveries(batch: Sequence[Delivery]) -> tuple[list[Outcome | None], dict[tuple[str, str], int]]:
    """Within a batch the first copy of a delivery wins, as it would one by one: the later copies' outcomes
    (duplicate) and, per (source, delivery id), the index of the first, in batch order."""
    outcomes: list[Outcome | None] = [None] * len(batch)
    first: dict[tuple[str, str], int] = {}
    for index, delivery in enumerate(batch):
        key = (delivery.source, delivery.delivery_id)
        if key in first:
            outcomes[index] = Outcome("duplicate")
        else:
            first[key] = index
    return outcomes, first


def settle_accepted(batch: Sequence[Delivery], accepted: Sequence[int], kept: Sequence[Sequence[Any]],
                    outcomes: list[Outcome | None]) -> list[Delivery]:
    """The claimed deliveries' outcomes from the events they kept; returns those whose every message had
    been received already (their dedupe rows are marked `duplicate`)."""
    repeated = []
    for index, events in zip(accepted, kept, strict=True):
        delivery = batch[index]
        if delivery.events and not events:  # every message in it was already received
            outcomes[index] = Outcome("duplicate")
            repeated.append(delivery)
        else:
            outcomes[index] = Outcome(delivery.status, events=len(events))
    return repeated


@dataclass
class BatchRecorder:
    """The flush function of the group committer for chat webhooks."""

    registry: EventRegistry
    outbox_table: Table
    source_service: str
    on_outbox_write: Callable[[], None] | None = None

    async def __call__(self, session: AsyncSession, batch: Sequence[Delivery]) -> list[Outcome]:
        now = utcnow()
        outcomes, first = first_deliveries(batch)
        # In key order: batches that overlap (two writers, two replicas) lock their claims in the same order.
        rows = [dict(source=batch[i].source, delivery_id=batch[i].delivery_id, outcome=batch[i].status,
                     event_count=len(batch[i].events), received_at=now) for _, i in sorted(first.items())]
        make = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        claim = make(_DELIVERY).on_conflict_do_nothing().returning(_DELIVERY.c.source, _DELIVERY.c.delivery_id)
        claimed = {(source, delivery_id) for source, delivery_id in await bulk_insert(
            session, _DELIVERY, rows, fallback=claim, pg_tail="ON CONFLICT DO NOTHING",
            returning=("source", "delivery_id"))}

        outbox_rows, quarantine_rows = [], []
        accepted: list[int] = []
        for key, index in first.items():
            delivery = batch[index]
            if key not in claimed:
                outcomes[index] = Outcome("duplicate")
                continue
            if delivery.quarantine_reason is not None:
                quarantine_rows.append(dict(
                    source=delivery.source, platform=delivery.platform, delivery_id=delivery.delivery_id,
                    reason=delivery.quarantine_reason[:2000], payload=delivery.payload, received_at=now,
                    headers=dict(delivery.replay) if delivery.replay else None))
                outcomes[index] = Outcome("quarantined", reason=delivery.quarantine_reason)
                continue
            accepted.append(index)
        kept = await claim_messages(session, [(batch[i], list(enumerate(batch[i].events))) for i in accepted], now)
        items = [(i, position, event) for i, events in zip(accepted, kept, strict=True) for position, event in events]
        applied = await directory.apply(session, [event for _, _, event in items], now=now)
        extra: dict[int, int] = {}
        for n, (index, position, event) in enumerate(items):
            outbox_rows.append(self._outbox_row(batch[index], position, applied.replaced.get(n, event), now))
        for n, event in applied.resolved:
            index = items[n][0]
            extra[index] = extra.get(index, 0) + 1
            position = len(batch[index].events) + extra[index] - 1  # after the delivery's own events
            outbox_rows.append(self._outbox_row(batch[index], position, event, now))
        repeated = settle_accepted(batch, accepted, kept, outcomes)
        if repeated:
            await mark_repeated(session, repeated)
        if outbox_rows:
            await bulk_insert(session, self.outbox_table, outbox_rows, fallback=insert(self.outbox_table))
            if self.on_outbox_write is not None:
                run_after_commit(session, self.on_outbox_write)
        if quarantine_rows:
            await session.execute(insert(_QUARANTINE), quarantine_rows)
        return [o if o is not None else Outcome("duplicate") for o in outcomes]

    def _outbox_row(self, delivery: Delivery, position: int, event: Staged, now: Any) -> dict[str, Any]:
        # Deterministic ids: the same delivery can never put a second copy of an event in the outbox.
        event_id = uuid5_str(EVENT_ID_NAMESPACE, f"{delivery.source}/{delivery.delivery_id}/{position}")
        spec = self.registry.spec_for(event.type, 1)  # the payload was validated against it when staged
        payload = encode_envelope(  # new_envelope's bytes without its model: one row per event (#19)
            event_id=event_id, type=event.type, source=self.source_service, community_id=event.community_id,
            correlation_id=delivery.correlation_id or current_correlation_id(), data=event.payload, occurred_at=now)
        key = event.community_id if spec.key is key_by_community else spec.key(Envelope.from_bytes(payload))
        return dict(event_id=event_id, topic=spec.topic, key=key, event_type=event.type, payload=payload,
                    created_at=now)

