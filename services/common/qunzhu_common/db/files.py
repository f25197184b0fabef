"""Data on disk belongs to the service's user alone: its directories 0700, its SQLite files 0600.

Modes are set with os.chmod after creating, so they hold whatever the process umask is (a umask of 022
would otherwise leave every database, the bus log and the gateway's key world-readable). A directory that
already existed is left as it is (it may be shared, e.g. a mounted volume); a SQLite file that already
existed with group or other bits is tightened, so an upgrade closes what an older version left open.
SQLite creates a database's `-wal` and `-shm` files with the database file's own mode.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

log = logging.getLogger(__name__)


def private_dir(path: str | Path) -> Path:
    """Create the directory (and missing parents) readable by us only; an existing one is left alone."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    for created in missing:
        _tighten(created, PRIVATE_DIR_MODE)
    return path


def private_file(path: str | Path) -> Path:
    """Make sure the file exists with mode 0600 (an empty file is an empty SQLite database)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            _tighten(companion, PRIVATE_FILE_MODE)
    return path


def private_sqlite_path(database: str | None) -> None:
    """For a SQLite URL's database: create it private unless it lives in memory."""
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(database)


def _tighten(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except PermissionError:  # not ours (a shared volume): say so rather than fail to start
        log.warning("cannot restrict %s to mode %o", path, mode)
