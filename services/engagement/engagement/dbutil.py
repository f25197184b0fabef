"""Dialect-aware atomic increments (INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x) and key lookups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Select, Table, bindparam, cast, func, select, true, tuple_
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


def _arrays(columns: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> Any:  # noqa: ANN401
    """The keys as one typed array per column, unnested into a derived table k(k0, k1, …)."""
    arrays = [cast(bindparam(None, [k[i] for k in keys], type_=ARRAY(col.type)), ARRAY(col.type))
              for i, col in enumerate(columns)]
    return func.unnest(*arrays).table_valued(*(f"k{i}" for i in range(len(columns)))).render_derived(name="k")


def keys_in(session: AsyncSession, columns: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> Any:
    """`(c1, c2, …) IN keys` whose statement text does not depend on how many keys there are.

    On PostgreSQL the keys travel as one array per column (`(c1, c2) IN (SELECT * FROM unnest($1, $2))`):
    the statement is compiled and prepared once, where an IN list of n tuples is a new statement (a
    prepare round trip and a plan of n ORs) for every n a batch happens to have. For lookups by a
    primary key or with a selective first column; a scan of a large table per key is `for_keys`.
    Elsewhere (SQLite) it is the plain row-value IN.
    """
    if session.bind.dialect.name != "postgresql":
        return tuple_(*columns).in_(list(keys)) if len(columns) > 1 else columns[0].in_([k[0] for k in keys])
    k = _arrays(columns, keys)
    rows = select(*k.c)
    return tuple_(*columns).in_(rows) if len(columns) > 1 else columns[0].in_(rows)


def for_keys(session: AsyncSession, query: Select, columns: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> Select:
    """`query` restricted to rows whose `columns` equal one of `keys`, with the same result columns.

    On PostgreSQL the keys are unnested and each one looks its rows up through the index on `columns`
    (a LATERAL subquery kept apart with OFFSET 0): one statement text for any number of keys, and a
    plan that stays an index lookup per key even while the table's statistics say it is empty (a
    semi-join there degrades into comparing every row with every key). Elsewhere a row-value IN.
    """
    if session.bind.dialect.name != "postgresql":
        return query.where(tuple_(*columns).in_(list(keys)))
    k = _arrays(columns, keys)
    inner = query.where(*(col == k.c[f"k{i}"] for i, col in enumerate(columns))).offset(0).lateral("hit")
    return select(*inner.c).select_from(k).join(inner, true())
