"""Dialect-aware INSERT … ON CONFLICT, for the two databases Qunzhu runs on."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from qunzhu_common.db.bulk import bulk_insert


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


@lru_cache(maxsize=256)
def _insert_ignore(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


async def insert_if_absent(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; True when this call inserted it."""
    if any(isinstance(value, ClauseElement) for value in values.values()):
        result = await session.execute(_insert(session, table).values(**values).on_conflict_do_nothing())
    else:
        # The hot path (every consumed event claims its inbox row here): one statement per dialect and
        # table with the row as parameters, instead of building and cache-keying a new one per call.
        result = await session.execute(_insert_ignore(session.bind.dialect.name, table), values)
    return result.rowcount == 1


async def upsert(
    session: AsyncSession, table: Table, values: dict[str, Any], *, key: Sequence[str]
) -> None:
    """Insert a row or overwrite the non-key columns of the existing one."""
    stmt = _insert(session, table).values(**values)
    updates = {name: stmt.excluded[name] for name in values if name not in key}
    await session.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=updates))


async def insert_many_if_absent(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], *, returning: str
) -> set[Any]:
    """Insert rows, skipping those whose key exists (or repeats within `rows`), in one statement;
    returns the `returning` column of the rows this call inserted."""
    if not rows:
        return set()
    if session.bind.dialect.name == "postgresql":
        inserted = await bulk_insert(session, table, rows, fallback=_insert(session, table),
                                     pg_tail="ON CONFLICT DO NOTHING", returning=[returning])
        return {row[0] for row in inserted}
    stmt = _insert(session, table).values(rows).on_conflict_do_nothing().returning(table.c[returning])
    return set((await session.execute(stmt)).scalars().all())
