"""The data directory is 0700 and every SQLite file (databases, the bus log) 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.db.engine import create_engine
from qunzhu_common.db.files import private_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    previous = os.umask(0o022)  # the usual default: without care, files would be 0644
    try:
        yield
    finally:
        os.umask(previous)


async def test_databases_and_the_bus_log_are_ours_alone(tmp_path, open_umask):
    data = tmp_path / "data" / "nested"
    engine = create_engine(f"sqlite+aiosqlite:///{data / 'svc.sqlite3'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        await engine.dispose()
    bus = LocalBus(data / "bus.sqlite3", partitions=1)
    await bus.start()
    try:
        await bus.publish([OutgoingRecord(topic="t", key="k", value=b"v", headers=())])
    finally:
        await bus.stop()

    assert mode(data) == 0o700 and mode(data.parent) == 0o700
    files = sorted(p.name for p in data.iterdir())
    assert {"svc.sqlite3", "bus.sqlite3"} <= set(files)
    assert {p.name: mode(p) for p in data.iterdir()} == {name: 0o600 for name in files}


def test_an_existing_world_readable_database_is_tightened(tmp_path, open_umask):
    database = tmp_path / "old.sqlite3"
    database.write_bytes(b"")
    os.chmod(database, 0o644)
    private_file(database)
    assert mode(database) == 0o600
