"""Content's tables: for now its own copy of the communities it schedules for."""

from __future__ import annotations

from datetime import datetime

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry
from qunzhu_common.db.types import AwareDateTime
from sqlmodel import Field, SQLModel

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class ContentModel(SQLModel, registry=registry):
    """Base of content's tables: its own metadata, apart from the other services'."""


class CommunityCopyPublic(SQLModel):
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    positioning: str = Field(max_length=280)
    timezone: str = Field(max_length=64, description="Schedules are evaluated in this zone.")
    created_at: datetime = Field(sa_type=AwareDateTime)
    synced_at: datetime = Field(sa_type=AwareDateTime, description="When content learned of it.")


class CommunityCopy(CommunityCopyPublic, ContentModel, table=True):
    """Projection of membership's communities (from membership.events.v1)."""

    __tablename__ = "community_copy"
