"""Async engines: SQLite (WAL, one writer at a time) by default, PostgreSQL from a URL."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from qunzhu_common.db.files import private_sqlite_path


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        private_sqlite_path(make_url(url).database)  # 0600 in a 0700 directory, whatever the umask
        # One connection per database: every transaction takes SQLite's write lock up front (BEGIN
        # IMMEDIATE), so a second connection could only wait for it in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms (embedded mode spent most of its time there). The pool hands
        # the connection over the moment the previous transaction ends, and waits as long as the lock would.
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30},
                                     pool_size=1, max_overflow=0, pool_timeout=30)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes
        # can fail with SQLITE_BUSY at once instead of waiting for the other writer.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
