"""Dialect-aware INSERT … ON CONFLICT, for the two databases Qunzhu runs on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


async def insert_if_absent(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; True when this call inserted it."""
    result = await session.execute(_insert(session, table).values(**values).on_conflict_do_nothing())
    return result.rowcount == 1


async def upsert(
    session: AsyncSession, table: Table, values: dict[str, Any], *, key: Sequence[str]
) -> None:
    """Insert a row or overwrite the non-key columns of the existing one."""
    stmt = _insert(session, table).values(**values)
    updates = {name: stmt.excluded[name] for name in values if name not in key}
    await session.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=updates))
