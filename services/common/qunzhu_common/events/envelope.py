"""The envelope every record on every topic carries (architecture.md, "Event envelope")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from qunzhu_common.context import current_correlation_id
from qunzhu_common.timeutil import utcnow


class EnvelopeHead(BaseModel):
    """The envelope's fields without `data`: what every consumed event offers whatever its payload.

    `Envelope` adds `data` as a plain dict (the generic wire form); the registry's typed envelopes add
    it as the event's payload model, so a consumer decodes a record in one call (`EventRegistry.decode_event`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(description="Unique per event; the idempotency key.")
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)
    version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=50)
    occurred_at: AwareDatetime
    community_id: str = Field(min_length=1, max_length=100)
    correlation_id: str = Field(min_length=1, max_length=200)


class Envelope(EnvelopeHead):
    """Wire form of an event. `data` is validated against the registry's payload model by type."""

    # Set by `new_envelope`: the typed payload it was built from (validated when it was built, so the
    # outbox need not validate `data` again) and the wire bytes, serialised once and reused. Slots, not
    # pydantic private attributes: no part of the model (equality, dumps, copies) and no cost at init.
    __slots__ = ("qz_payload", "qz_raw")

    data: dict[str, Any]

    @property
    def payload(self) -> BaseModel | None:
        """The typed payload this envelope was built from (None when it was decoded or built from a dict)."""
        return getattr(self, "qz_payload", None)

    def to_bytes(self) -> bytes:
        raw: bytes | None = getattr(self, "qz_raw", None)
        if raw is None:
            raw = self.__pydantic_serializer__.to_json(self)
            object.__setattr__(self, "qz_raw", raw)  # a cache on a frozen model
        return raw

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


def new_envelope(
    *,
    type: str,
    data: BaseModel,
    source: str,
    community_id: str,
    version: int = 1,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Build an envelope for a typed payload; the correlation id defaults to the one in force."""
    envelope = Envelope(
        id=event_id or uuid.uuid4(),
        type=type,
        version=version,
        source=source,
        occurred_at=occurred_at or utcnow(),
        community_id=community_id,
        correlation_id=correlation_id or current_correlation_id(),
        data=data.model_dump(mode="json"),
    )
    object.__setattr__(envelope, "qz_payload", data)
    return envelope


_TIME = TypeAdapter(AwareDatetime)
_last_time: tuple[datetime | None, str] = (None, "")


def _time_text(value: datetime) -> str:
    """The envelope's text of `value`; a batch's events share one time, so the last one is kept."""
    global _last_time  # noqa: PLW0603 - a one-entry cache
    last, text = _last_time
    if value is not last:
        text = _TIME.dump_python(value, mode="json")
        _last_time = (value, text)
    return text


def encode_envelope(
    *, event_id: uuid.UUID | str, type: str, source: str, community_id: str, correlation_id: str, data: BaseModel,
    occurred_at: datetime, version: int = 1,
) -> bytes:
    """The wire bytes of `new_envelope(...)` for these fields, without building the model (#19: the chat
    webhook's outbox rows, one per event, on the gateway's one thread). Only for values already valid as
    the envelope requires them — a type from the registry, a payload validated against its contract, ids
    from the service — since nothing is checked here; `Envelope.from_bytes` reads the result like any other."""
    head = orjson.dumps({
        "id": str(event_id), "type": type, "version": version, "source": source,
        "occurred_at": _time_text(occurred_at), "community_id": community_id, "correlation_id": correlation_id,
    })
    return b"".join((head[:-1], b',"data":', data.__pydantic_serializer__.to_json(data), b"}"))
