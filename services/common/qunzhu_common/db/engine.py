"""Async engines: SQLite (WAL, one writer at a time) by default, PostgreSQL from a URL."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from qunzhu_common.db.files import private_sqlite_path
from qunzhu_common.db.writegate import WriteGate, gated_pool_class


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10, gate: WriteGate | None = None
                  ) -> AsyncEngine:
    if is_sqlite(url):
        private_sqlite_path(make_url(url).database)  # 0600 in a 0700 directory, whatever the umask
        # One connection per database: every transaction takes SQLite's write lock up front (BEGIN
        # IMMEDIATE), so a second connection could only wait for it in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms (embedded mode spent most of its time there). The write gate
        # (qunzhu_common.db.writegate) hands the connection over the moment the previous transaction ends:
        # requests before background work, first come first served, with a bounded wait. Reads that need
        # no write lock go to `create_read_engine`'s pool instead.
        gate = gate or WriteGate()
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30},
                                     poolclass=gated_pool_class(gate),
                                     pool_size=1, max_overflow=0, pool_timeout=30)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def create_read_engine(url: str, write_engine: AsyncEngine, *, pool_size: int = 4) -> AsyncEngine:
    """The engine for reads that never wait for a writer: on SQLite, `pool_size` read-only connections
    (`PRAGMA query_only`, deferred transactions: each reads a WAL snapshot while the writer goes on); on
    PostgreSQL the write engine itself (readers never wait for writers there anyway)."""
    database = make_url(url).database
    if not is_sqlite(url) or not database or database == ":memory:" or "mode=memory" in url:
        return write_engine  # a private in-memory database has no second connection to read it through
    engine = create_async_engine(url, connect_args={"timeout": 5}, pool_size=pool_size, max_overflow=0,
                                 pool_timeout=30)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # the file may not exist as WAL yet on a first read
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")  # deferred: a snapshot, no lock

    return engine


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


LOCK_ONLY = "qunzhu.lock_only"


def mark_lock_only(connection: AsyncConnection) -> None:
    """Declare that this checked-out connection holds only a lock (no transaction, no rows) while its task
    waits on the network: the outbox relay's leadership on PostgreSQL. The test suites' I/O guard
    (qunzhu_common.testing_io_guard) then lets it be held across a publish."""
    connection.sync_connection.connection._connection_record.info[LOCK_ONLY] = True  # type: ignore[union-attr]


def unmark_lock_only(connection: AsyncConnection) -> None:
    record = connection.sync_connection.connection._connection_record  # type: ignore[union-attr]
    if record is not None:
        record.info.pop(LOCK_ONLY, None)


def create_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
