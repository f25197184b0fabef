"""Database layer: async engines (aiosqlite / asyncpg), aware timestamps, per-service metadata."""

from qunzhu_common.db.engine import create_engine, create_session_maker, is_postgres, is_sqlite
from qunzhu_common.db.types import AwareDateTime

__all__ = ["AwareDateTime", "create_engine", "create_session_maker", "is_postgres", "is_sqlite"]
