"""Gateway's tables: for now only its outbox and inbox (webhook deduplication comes with the connectors)."""

from __future__ import annotations

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry
from sqlmodel import SQLModel

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class GatewayModel(SQLModel, registry=registry):
    """Base of the gateway's tables: its own metadata, apart from the other services'."""
