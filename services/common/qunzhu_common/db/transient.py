"""Telling a database outage from a failing statement.

Both the bus (retry instead of dead-lettering) and the HTTP layer (503 + Retry-After instead of 500) need
the same answer: did the database or network fail, so that the same request will work later?
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes where the database, not the statement, failed: connection exceptions (08…),
# insufficient resources (53…), shutdown or start-up in progress (57P01–57P03).
_TRANSIENT_SQLSTATES = ("08", "53", "57P")


def is_transient(exc: BaseException) -> bool:
    """True when retrying later will work whatever the input: the database or network is unreachable."""
    if isinstance(exc, OSError | PoolTimeout):  # connection refused or reset, timeouts, a full pool
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(state, str) and state.startswith(_TRANSIENT_SQLSTATES)
    return False
