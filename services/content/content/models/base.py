"""Content's metadata (apart from the other services'), its outbox/inbox and small column helpers."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlmodel import SQLModel

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class ContentModel(SQLModel, registry=registry):
    """Base of content's tables: its own metadata, apart from the other services'."""


def new_id() -> str:
    return str(uuid.uuid4())


def json_column(*, nullable: bool = False) -> Any:
    """A fresh JSON column (SQLModel needs one Column object per table)."""
    return Column(JSON, nullable=nullable)


def seq_column() -> Any:
    """An autoincrement integer key (the rowid alias on SQLite), used where insertion order matters."""
    return Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
