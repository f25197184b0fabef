"""Per-service metadata with a stable constraint naming convention.

Every service owns its own `MetaData` (services share contracts, never tables), so four services can
live in one process in embedded mode without their tables mixing.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import registry

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_registry() -> registry:
    """A SQLAlchemy registry (and MetaData) for one service's SQLModel tables."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))
