"""The envelope every record on every topic carries (architecture.md, "Event envelope")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.context import current_correlation_id
from qunzhu_common.timeutil import utcnow


class Envelope(BaseModel):
    """Wire form of an event. `data` is validated against the registry's payload model by type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(description="Unique per event; the idempotency key.")
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)
    version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=50)
    occurred_at: AwareDatetime
    community_id: str = Field(min_length=1, max_length=100)
    correlation_id: str = Field(min_length=1, max_length=200)
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

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
    return Envelope(
        id=event_id or uuid.uuid4(),
        type=type,
        version=version,
        source=source,
        occurred_at=occurred_at or utcnow(),
        community_id=community_id,
        correlation_id=correlation_id or current_correlation_id(),
        data=data.model_dump(mode="json"),
    )
