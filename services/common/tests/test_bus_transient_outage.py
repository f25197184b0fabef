"""A database outage is not a poison record: it is waited out, never dead-lettered (issue 7's fault suite
found PostgreSQL restarts sending good records to the DLQ after max_attempts)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.exc import DBAPIError, IntegrityError

from qunzhu_common.bus.delivery import RetryPolicy
from qunzhu_common.db.transient import as_dbapi_error, is_concurrency_conflict, is_transient

TOPIC = "work.v1"
DLQ = "work.v1.dlq"


class _PgError(Exception):
    """What SQLAlchemy's asyncpg adapter wraps: a driver error carrying the SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _db_error(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", None, _PgError("the database system is shutting down", sqlstate))


def test_outages_are_transient_and_statement_errors_are_not() -> None:
    assert is_transient(ConnectionRefusedError(111, "Connection refused"))
    assert is_transient(_db_error("57P03"))  # cannot connect now (shutting down, starting up)
    assert is_transient(_db_error("57P01"))  # admin shutdown cut the connection
    assert is_transient(_db_error("08006"))  # connection failure
    assert not is_transient(_db_error("23505"))  # unique violation: the record's own effect, not the database
    assert not is_transient(IntegrityError("INSERT", None, _PgError("duplicate key", "23505")))
    assert not is_transient(RuntimeError("cannot handle poison"))


def test_asyncpg_errors_raised_without_sqlalchemy_are_classified_alike() -> None:
    """The gateway's group commit writes on asyncpg's own connection (#19): its errors are wrapped as SQLAlchemy
    would have wrapped them, so a lost connection is a 503 and a deadlock is run again, never a 500."""
    import asyncpg

    lost = as_dbapi_error(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"))
    assert isinstance(lost, DBAPIError) and is_transient(lost)
    deadlock = as_dbapi_error(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
    assert is_concurrency_conflict(deadlock) and is_transient(deadlock)
    shutdown = as_dbapi_error(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert is_transient(shutdown)
    duplicate = as_dbapi_error(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert isinstance(duplicate, DBAPIError) and not is_transient(duplicate)
    other = RuntimeError("not the driver's")
    assert as_dbapi_error(other) is other


async def test_an_outage_longer_than_max_attempts_is_waited_out_not_dead_lettered(open_bus, record, eventually):
    bus = await open_bus(policy=RetryPolicy(max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.005))
    attempts: Counter[str] = Counter()
    processed: list[str] = []

    async def handler(rec) -> None:
        value = rec.value.decode()
        attempts[value] += 1
        if value == "during-restart" and attempts[value] <= 6:
            raise _db_error("57P03") if attempts[value] % 2 else ConnectionRefusedError(111, "Connection refused")
        if value == "poison":
            raise RuntimeError("cannot handle poison")
        processed.append(value)

    await bus.subscribe(group_id="g", topics=[TOPIC], handler=handler)
    await bus.publish([record(TOPIC, "k", "during-restart"), record(TOPIC, "k", "poison"), record(TOPIC, "k", "after")])
    await eventually(lambda: processed == ["during-restart", "after"], what="both good records processed")

    assert attempts["during-restart"] == 7  # six failures, more than max_attempts, then the effect
    assert attempts["poison"] == 2  # a real poison record still goes to the DLQ after max_attempts
    await eventually(lambda: _dead(bus), what="the poison dead-lettered")
    assert [r.value for r in await bus.read_all(DLQ)] == [b"poison"]


async def _dead(bus) -> bool:
    return bool(await bus.read_all(DLQ))
