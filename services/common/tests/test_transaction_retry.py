"""Deadlocks, serialization failures and a locked SQLite file are transient: the request runs again, and
when the attempts run out the answer is 503 + Retry-After, never 500."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from qunzhu_common.db.transient import is_concurrency_conflict, is_transient
from qunzhu_common.errors import install_problem_handlers
from qunzhu_common.transaction_retry import TransactionRetryMiddleware, forbid_replay


class PgError(Exception):
    """What a PostgreSQL driver raises: the SQLSTATE on the error (psycopg) ..."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


class AdaptedError(Exception):
    """... or on the driver's error behind SQLAlchemy's adapter (asyncpg)."""


def wrapped(orig: BaseException, cls: type[DBAPIError] = OperationalError) -> DBAPIError:
    return cls("UPDATE lottery SET entry_count = entry_count + 1", {}, orig)


def asyncpg_style(sqlstate: str) -> DBAPIError:
    adapted = AdaptedError("deadlock detected")
    adapted.__cause__ = PgError(sqlstate)
    return wrapped(adapted, DBAPIError)


DEADLOCK = wrapped(PgError("40P01"))


@pytest.mark.parametrize("exc", [
    DEADLOCK, wrapped(PgError("40001")), asyncpg_style("40P01"), asyncpg_style("40001"),
    wrapped(sqlite3.OperationalError("database is locked")),
    wrapped(sqlite3.OperationalError("database table is locked: lottery")),
])
def test_lost_races_are_concurrency_conflicts_and_transient(exc):
    assert is_concurrency_conflict(exc)
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    wrapped(PgError("23505"), IntegrityError),  # a unique violation is the input's fault
    wrapped(PgError("42P01")),
    wrapped(sqlite3.OperationalError("no such table: lottery")),
    wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")),
    RuntimeError("database is locked"),  # not a database error at all
    ValueError("40P01"),
])
def test_other_failures_are_not_concurrency_conflicts(exc):
    assert not is_concurrency_conflict(exc)


def app_failing(times: int, exc: BaseException = DEADLOCK, *, attempts: int = 4, no_replay: bool = False):
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(TransactionRetryMiddleware, attempts=attempts, backoff_s=0.001)
    app.state.runs = []

    @app.post("/entries")
    async def enter(request: Request) -> dict:
        app.state.runs.append(await request.json())
        if no_replay:
            forbid_replay(request)
        if len(app.state.runs) <= times:
            raise exc
        return {"runs": len(app.state.runs)}

    return app


async def post(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/entries", json={"person_id": "telegram:1"})


async def test_a_request_that_lost_a_race_runs_again_with_the_same_body():
    app = app_failing(times=2)
    response = await post(app)
    assert response.status_code == 200, response.text
    assert response.json() == {"runs": 3}
    assert app.state.runs == [{"person_id": "telegram:1"}] * 3


async def test_when_the_attempts_run_out_the_answer_is_503_with_retry_after():
    app = app_failing(times=10, attempts=3)
    response = await post(app)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(app.state.runs) == 3


async def test_other_errors_are_not_run_again():
    app = app_failing(times=1, exc=RuntimeError("a bug"))
    response = await post(app)
    assert response.status_code == 500
    assert len(app.state.runs) == 1


async def test_a_request_that_forbade_replay_runs_once_and_gets_503():
    app = app_failing(times=1, no_replay=True)
    response = await post(app)
    assert response.status_code == 503
    assert len(app.state.runs) == 1
