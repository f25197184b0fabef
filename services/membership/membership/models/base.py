"""Membership's own metadata (apart from the other services' in embedded mode) and shared field helpers."""

from __future__ import annotations

import uuid

from sqlmodel import SQLModel

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class MembershipModel(SQLModel, registry=registry):
    """Base of membership's tables."""


class Body(SQLModel):
    """Base of request bodies: unknown fields are rejected (422), so `role`, `tier`, `status` or
    `expires_at` can never be mass-assigned through an API body."""

    model_config = {"extra": "forbid"}  # type: ignore[assignment]


def new_id() -> str:
    return str(uuid.uuid4())
