"""Each service's alembic history builds exactly the schema its models declare."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from qunzhu.services import SERVICE_NAMES
from qunzhu_common.db.migrate import upgrade_head


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
