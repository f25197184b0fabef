"""A database outage during a request is 503 + Retry-After problem+json, not a 500 (issue 7's fault suite saw
in-flight requests answered 500 while PostgreSQL restarted); a real bug is still a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from qunzhu_common.errors import PROBLEM_JSON, install_problem_handlers


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/shutdown")
    async def shutdown() -> None:
        raise DBAPIError("SELECT 1", None, _PgError("terminating connection due to administrator command", "57P01"))

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    @app.get("/bug")
    async def bug() -> None:
        raise ZeroDivisionError("a real bug")

    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_database_shutdown_and_refused_connections_are_503_with_retry_after() -> None:
    for path in ("/shutdown", "/refused"):
        response = await _get(path)
        assert response.status_code == 503, path
        assert response.headers["content-type"] == PROBLEM_JSON
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["type"].endswith("/service-unavailable")
        assert "administrator" not in response.text  # the driver's message stays in the log


async def test_other_errors_stay_500() -> None:
    response = await _get("/bug")
    assert response.status_code == 500
    assert response.json()["type"].endswith("/internal")
