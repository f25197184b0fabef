"""Recording a verified delivery: dedupe row, events in the outbox or the payload in quarantine, all in
the caller's transaction, so a 2xx is only sent once everything is durable."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import QuarantinedWebhook, WebhookDelivery
from gateway.webhooks.commands import RawEvent, Unnormalisable
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import EventRegistry
from qunzhu_common.outbox import OutboxWriter
from qunzhu_common.timeutil import utcnow

EVENT_ID_NAMESPACE = uuid.UUID("6f1d4a52-9a51-4c1e-8d0b-7d0f1a0c2a11")
MAX_DELIVERY_ID = 200  # webhook_delivery.delivery_id; a longer platform id is replaced by the body's digest


@dataclass(frozen=True)
class Staged:
    """An event ready for the outbox: type, validated payload fields and the community it belongs to."""

    type: str
    community_id: str
    payload: BaseModel
    # For the names directory (gateway.chatdir): the group, who the event names with which name
    # (person id, display name, username), and @-names its text mentions without an id.
    group_id: str = ""
    names: tuple[tuple[str, str, str], ...] = ()
    mention_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted, ignored, quarantined, duplicate; answered (a platform reply, nothing recorded)
    events: int = 0
    reason: str = ""
    reply: Any = None  # adapters.Reply: the platform's own answer instead of our JSON acknowledgement


def stage_chat_events(
    raw: Sequence[RawEvent], *, registry: EventRegistry, identity_platform: str, groups: Mapping[str, str],
    delivery_id: str,
) -> list[Staged]:
    """Map each raw event's chat to its community and validate it against the contract."""
    staged = []
    for event in raw:
        group = f"{identity_platform}:{event.chat_id}"
        community_id = groups.get(event.chat_id)
        if community_id is None:
            raise Unnormalisable(f"chat group {group} is not mapped to a community")
        data = {"platform": identity_platform, "group_id": group, "delivery_id": delivery_id, **event.fields}
        spec = registry.spec_for(event.type, 1)
        try:
            payload = spec.payload.model_validate(data)
        except ValidationError as exc:
            raise Unnormalisable(f"{event.type}: {_short(exc)}") from None
        staged.append(Staged(event.type, community_id, payload, group_id=group, names=_names(event),
                             mention_names=tuple(event.mention_names)))
    return staged


# Which field of which event names whom: every chat event that carries a name teaches the directory.
_NAMED = {"chat.message.posted": ("sender_id", "sender_name"), "chat.command.issued": ("sender_id", "sender_name"),
          "chat.member.joined": ("member_id", "display_name"), "chat.member.renamed": ("member_id", "display_name")}


def _names(event: RawEvent) -> tuple[tuple[str, str, str], ...]:
    person_field, name_field = _NAMED.get(event.type, (None, None))
    person = event.fields.get(person_field) if person_field else None
    if not isinstance(person, str) or not person:
        return ()
    name = str(event.fields.get(name_field) or "").strip()[:200]
    username = str(event.usernames.get(person) or "").strip().lstrip("@")[:200]
    return ((person, name, username),) if name or username else ()


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])


async def record_delivery(
    session: AsyncSession, *, outbox: OutboxWriter, source: str, platform: str, delivery_id: str,
    events: Sequence[Staged] = (), quarantine_reason: str | None = None, payload: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """Claim the delivery id, then write its events (or its quarantine row). Duplicate: nothing written."""
    if quarantine_reason is not None:
        status = "quarantined"
    else:
        status = "accepted" if events else "ignored"
    claimed = await insert_if_absent(session, WebhookDelivery.__table__, dict(  # type: ignore[attr-defined]
        source=source, delivery_id=delivery_id, outcome=status, event_count=len(events), received_at=utcnow(),
    ))
    if not claimed:
        return Outcome("duplicate")
    if quarantine_reason is not None:
        session.add(QuarantinedWebhook(
            source=source, platform=platform, delivery_id=delivery_id, reason=quarantine_reason[:2000],
            payload=payload, headers=dict(headers) if headers else None,
        ))
        await session.flush()
        return Outcome(status, reason=quarantine_reason)
    for index, event in enumerate(events):
        # Deterministic ids: the same delivery can never put a second copy of an event in the outbox.
        await outbox.add(session, new_envelope(
            type=event.type, data=event.payload, source=outbox.source, community_id=event.community_id,
            event_id=uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}/{delivery_id}/{index}"),
        ))
    return Outcome(status, events=len(events))



def stage(registry: EventRegistry, type_: str, community_id: str | None, data: dict) -> Staged:
    """Validate one event for the outbox; a payload that breaks the contract is unnormalisable."""
    if not community_id:
        raise Unnormalisable(f"{type_}: no community id")
    try:
        payload = registry.spec_for(type_, 1).payload.model_validate(data)
    except ValidationError as exc:
        raise Unnormalisable(f"{type_}: {_short(exc)}") from None
    return Staged(type_, community_id, payload)
