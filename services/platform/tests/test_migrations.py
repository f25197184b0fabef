"""Each service's alembic history builds exactly the schema its models declare."""

from __future__ import annotations

import importlib
from datetime import date, datetime, time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Time,
    create_engine,
    func,
    insert,
    inspect,
    select,
    text,
)

from qunzhu.services import SERVICE_NAMES
from qunzhu_common.db.migrate import alembic_config, upgrade_head


def _service(name: str):
    return importlib.import_module(f"{name}.app").SPEC


def _diff(db: Path, metadata) -> list:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_upgrade_head_creates_exactly_the_tables_of_the_metadata(tmp_path, name):
    spec = _service(name)
    db = tmp_path / f"{name}.sqlite3"

    upgrade_head(spec.migrations_dir, f"sqlite+aiosqlite:///{db}")

    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert tables - {"alembic_version"} == set(spec.metadata.tables)
    assert {"outbox", "inbox"} <= tables


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_migrated_schema_matches_the_models(tmp_path, name):
    spec = _service(name)
    db = tmp_path / f"{name}.sqlite3"
    upgrade_head(spec.migrations_dir, f"sqlite+aiosqlite:///{db}")

    assert _diff(db, spec.metadata) == []


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_upgrade_head_twice_is_a_no_op(tmp_path, name):
    spec = _service(name)
    url = f"sqlite+aiosqlite:///{tmp_path / 'twice.sqlite3'}"
    upgrade_head(spec.migrations_dir, url)
    upgrade_head(spec.migrations_dir, url)  # a restart migrates again: nothing to do, nothing breaks

    assert _diff(tmp_path / "twice.sqlite3", spec.metadata) == []


def test_the_comparison_does_see_a_missing_schema(tmp_path):
    # Guard for the test above: on an empty database the same comparison reports every table.
    spec = _service("membership")
    db = tmp_path / "empty.sqlite3"
    create_engine(f"sqlite:///{db}").dispose()

    added = {op[1].name for op in _diff(db, spec.metadata) if op[0] == "add_table"}
    assert added == set(spec.metadata.tables)


def _a_row(table: Table) -> dict:
    """One plausible row for any table: the kind of data an older version left behind."""
    values = {}
    for column in table.columns:
        type_ = column.type
        if column.primary_key and isinstance(type_, Integer) and len(table.primary_key.columns) == 1:
            continue  # the database numbers it
        if isinstance(type_, Boolean):
            values[column.name] = False
        elif isinstance(type_, Integer | Float | Numeric):
            values[column.name] = 1
        elif isinstance(type_, DateTime):
            values[column.name] = datetime(2026, 1, 1, 8, 0)
        elif isinstance(type_, Time):
            values[column.name] = time(8, 0)
        elif isinstance(type_, Date):
            values[column.name] = date(2026, 1, 1)
        elif isinstance(type_, LargeBinary):
            values[column.name] = b"x"
        elif isinstance(type_, JSON):
            values[column.name] = {}
        else:
            length = getattr(type_, "length", None) or 36
            values[column.name] = f"{table.name}-{column.name}"[:length]
    return values


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_migration_upgrades_a_database_that_holds_data(tmp_path, name):
    # A deployed database is never empty: each revision must carry the rows of the one before it
    # (a NOT NULL column needs a default or a backfill). Walk base → head, filling every table on the way.
    spec = _service(name)
    db = tmp_path / f"{name}.sqlite3"
    url = f"sqlite+aiosqlite:///{db}"
    config = alembic_config(spec.migrations_dir, url)
    revisions = [r.revision for r in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]
    engine = create_engine(f"sqlite:///{db}")
    try:
        for revision in revisions:
            command.upgrade(config, revision)
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.begin() as conn:
                for table in metadata.sorted_tables:
                    empty = conn.execute(select(func.count()).select_from(table)).scalar() == 0
                    if table.name != "alembic_version" and empty:
                        conn.execute(insert(table).values(_a_row(table)))
        with engine.connect() as conn:
            filled = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            assert all(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() >= 1 for t in filled)
    finally:
        engine.dispose()
    assert _diff(db, spec.metadata) == []
