"""Dialect-aware atomic increments (INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def _insert(session: AsyncSession, table: Table) -> Any:
    return postgresql.insert(table) if session.bind.dialect.name == "postgresql" else sqlite.insert(table)


async def increment(
    session: AsyncSession,
    table: Table,
    *,
    key: dict[str, Any],
    add: dict[str, int],
    returning: Sequence[str] = (),
) -> Any:
    """Add `add` to the row at `key`, creating it with those values if absent; atomic on both databases."""
    stmt = _insert(session, table).values(**key, **add)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: table.c[name] + stmt.excluded[name] for name in add}
    )
    if returning:
        stmt = stmt.returning(*(table.c[name] for name in returning))
        return (await session.execute(stmt)).one()
    await session.execute(stmt)
    return None
