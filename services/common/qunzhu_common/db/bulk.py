"""Many rows in one statement, cheaply: the write path of consumers that handle events in batches.

On PostgreSQL the rows travel as one array per column (`INSERT … SELECT * FROM unnest($1::t[], …)`),
encoded by asyncpg in C: about ten times less Python work than SQLAlchemy's multi-VALUES rendering
of the same rows (~200 µs per row for a 500-row inbox claim), which was the largest cost of a
scored batch. Elsewhere (SQLite: embedded mode, unit tests) the equivalent SQLAlchemy statement runs.

Values go through the columns' own bind processing (AwareDateTime refuses naive times; JSON is
serialised), so both paths store the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


@lru_cache(maxsize=256)
def _plan(
    dialect: Dialect, table: Table, columns: tuple[str, ...], tail: str, returning: tuple[str, ...]
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    cols = [table.c[name] for name in columns]
    arrays = ", ".join(f"${i}::{col.type.compile(dialect=dialect)}[]" for i, col in enumerate(cols, start=1))
    sql = f'INSERT INTO {table.name} ({", ".join(columns)}) SELECT * FROM unnest({arrays}) {tail}'
    if returning:
        sql += f' RETURNING {", ".join(returning)}'
    # The columns' own bind processing (type decorators, JSON serialisation), as SQLAlchemy would apply it.
    return sql, tuple(col.type._cached_bind_processor(dialect) for col in cols)


async def bulk_insert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    fallback: Insert,
    pg_tail: str = "",
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys) in one statement; returns the `returning` columns.

    `pg_tail` is the PostgreSQL clause after the rows (ON CONFLICT …); `fallback` is the same statement
    in SQLAlchemy (with `.returning(...)` when `returning` is given), run with the rows as parameters
    on other databases. Order of the returned rows is not guaranteed.
    """
    if not rows:
        return []
    if session.bind.dialect.name != "postgresql":
        result = await session.execute(fallback, list(rows))
        return [tuple(r) for r in result] if returning else []
    sql, arrays = _statement(session.bind.dialect, table, rows, pg_tail, returning)
    # Through SQLAlchemy's connection (not the raw driver): it opens the session's transaction first.
    result = await (await session.connection()).exec_driver_sql(sql, tuple(arrays))
    return [tuple(r) for r in result] if returning else []


async def bulk_insert_driver(
    connection: Any, dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]], *, pg_tail: str = "",
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """`bulk_insert` on asyncpg's own connection (PostgreSQL only), in the transaction the caller opened on
    it: for a hot path that skips SQLAlchemy's session (gateway.webhooks.fastpath)."""
    if not rows:
        return []
    sql, arrays = _statement(dialect, table, rows, pg_tail, returning)
    if returning:
        return [tuple(r) for r in await connection.fetch(sql, *arrays)]
    await connection.execute(sql, *arrays)
    return []


def _statement(
    dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]], tail: str, returning: Sequence[str]
) -> tuple[str, list[list[Any]]]:
    columns = tuple(rows[0])
    sql, converters = _plan(dialect, table, columns, tail, tuple(returning))
    arrays = []
    for name, convert in zip(columns, converters, strict=True):
        values = [row[name] for row in rows]
        arrays.append([convert(v) for v in values] if convert is not None else values)
    return sql, arrays


async def next_ids(session: AsyncSession, table: Table, count: int, column: str = "id") -> list[int] | None:
    """`count` values of the column's sequence, in order (PostgreSQL); None elsewhere (let the database
    assign them). Lets a batch insert rows with known ids, in order, without RETURNING."""
    if session.bind.dialect.name != "postgresql" or count == 0:
        return None
    result = await (await session.connection()).exec_driver_sql(
        "SELECT nextval(pg_get_serial_sequence($1, $2)) FROM generate_series(1, $3)", (table.name, column, count)
    )
    return [int(r[0]) for r in result]
