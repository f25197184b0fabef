"""The outbox and inbox tables every service carries in its own database."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table

from qunzhu_common.db.types import AwareDateTime


def add_messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Declare `outbox` and `inbox` in a service's metadata (so its alembic history owns them)."""
    outbox = Table(
        "outbox",
        metadata,
        # Integer on SQLite is the rowid alias (autoincrement); BigInteger elsewhere.
        Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", AwareDateTime(), nullable=False),
        Column("published_at", AwareDateTime(), nullable=True),
    )
    Index(
        "ix_outbox_unpublished",
        outbox.c.seq,
        postgresql_where=outbox.c.published_at.is_(None),
        sqlite_where=outbox.c.published_at.is_(None),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("processed_at", AwareDateTime(), nullable=False),
    )
    return outbox, inbox
