"""Telling a database outage or a lost concurrency race from a failing statement.

Both the bus (retry instead of dead-lettering) and the HTTP layer (503 + Retry-After instead of 500) need
the same answer: did the database or network fail, or did the transaction lose a race (a deadlock, a
serialization failure, a locked SQLite file), so that the same request will work later? A lost race is
worth re-running at once (`is_concurrency_conflict`, see qunzhu_common.db.retry); an outage needs time.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes where the database, not the statement, failed: connection exceptions (08…),
# insufficient resources (53…), shutdown or start-up in progress (57P01–57P03).
_TRANSIENT_SQLSTATES = ("08", "53", "57P")


# PostgreSQL aborts one transaction of a deadlock (40P01) or of a serialization conflict (40001); run
# again, it finds the winner committed. SQLite reports a writer it waited for too long as SQLITE_BUSY
# ("database is locked") or SQLITE_LOCKED.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
_SQLITE_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


def _sqlstate(error: BaseException | None) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def is_concurrency_conflict(exc: BaseException) -> bool:
    """True when the transaction lost a race with another one: re-running the whole transaction will work."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    # asyncpg's error sits behind SQLAlchemy's adapter (`__cause__`); psycopg's carries the code itself.
    if _sqlstate(orig) in _CONFLICT_SQLSTATES or _sqlstate(getattr(orig, "__cause__", None)) in _CONFLICT_SQLSTATES:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY_CODES:
        return True
    return type(orig).__module__.startswith(("sqlite3", "aiosqlite")) and str(orig).startswith(_SQLITE_BUSY_MESSAGES)


def is_read_only_write(exc: BaseException) -> bool:
    """A write on a read-only SQLite connection (embedded mode's read pool, `PRAGMA query_only`)."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == 8:  # SQLITE_READONLY
        return True
    return type(orig).__module__.startswith(("sqlite3", "aiosqlite")) and "readonly database" in str(orig)


def is_transient(exc: BaseException) -> bool:
    """True when retrying later will work whatever the input: the database or network is unreachable, or
    the transaction lost a race (deadlock, serialization failure, locked SQLite file)."""
    if isinstance(exc, OSError | PoolTimeout):  # connection refused or reset, timeouts, a full pool
        return True
    if is_concurrency_conflict(exc):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(state, str) and state.startswith(_TRANSIENT_SQLSTATES)
    return False


def as_dbapi_error(exc: BaseException) -> BaseException:
    """asyncpg's own exception (a hot path on the driver's connection, without SQLAlchemy) as SQLAlchemy
    would have raised it, so the answers above hold for it too; any other exception unchanged."""
    if isinstance(exc, DBAPIError) or not type(exc).__module__.startswith("asyncpg"):
        return exc
    lost = type(exc).__name__ == "ConnectionDoesNotExistError" or "connection is closed" in str(exc)
    return DBAPIError(None, None, exc, connection_invalidated=lost)  # type: ignore[arg-type]
