"""Engagement's own metadata (apart from the other services') and its outbox/inbox tables."""

from __future__ import annotations

from sqlmodel import SQLModel

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class EngagementModel(SQLModel, registry=registry):
    """Base of engagement's tables."""
