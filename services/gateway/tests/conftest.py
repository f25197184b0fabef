"""Factories for the gateway's tests: the embedded platform, or a gateway whose upstreams misbehave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from qunzhu.embedded import embedded_platform


async def eventually(
    check: Callable[[], Awaitable[object] | object], *, within: float = 5.0, what: str = "condition"
):
    """Poll `check` until it returns something truthy (and return it); fail past the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient


@asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[Gateway]:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            yield Gateway(app, client)


def community_body(**overrides) -> dict:
    body = {"name": "晨读营", "positioning": "每天早上一起读十页书", "owner_id": "owner-1"}
    body.update(overrides)
    return body


class Upstream:
    """An httpx transport standing for one service: answers with `respond`, counts the calls."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.calls: list[httpx.Request] = []
        self._respond = respond
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        return self._respond(request)


def refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def ready(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"status": "ok"})


@pytest.fixture(name="eventually")
def eventually_fixture():
    return eventually


@pytest.fixture(name="community_body")
def community_body_fixture():
    return community_body


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Every service in this process (SQLite files in tmp_path, one LocalBus) behind the gateway."""
    async with embedded_platform(tmp_path) as gateway_app:
        async with _serve(gateway_app) as gateway:
            yield gateway


@pytest.fixture
def serve_gateway() -> Callable[[FastAPI], AbstractAsyncContextManager[Gateway]]:
    """`async with serve_gateway(app) as gw`: run a gateway app's lifespan and talk to it."""
    return _serve


@pytest.fixture
def upstream() -> Callable[[Callable[[httpx.Request], httpx.Response]], Upstream]:
    return Upstream


@pytest.fixture(name="refusing")
def refusing_fixture():
    return refusing


@pytest.fixture(name="ready")
def ready_fixture():
    return ready
