"""Factories for engagement's tests: membership (the producer) and engagement on one LocalBus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from engagement.app import create_app as create_engagement_app
from engagement.settings import EngagementSettings
from fastapi import FastAPI
from membership.app import create_app as create_membership_app
from membership.settings import MembershipSettings
from qunzhu_common.bus.local import LocalBus


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
class Running:
    app: FastAPI
    client: httpx.AsyncClient


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Running]:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield Running(app, client)


@pytest.fixture(name="eventually")
def eventually_fixture():
    return eventually


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[LocalBus]:
    bus = LocalBus(tmp_path / "bus.sqlite3", partitions=3, poll_interval_s=0.05)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def membership(tmp_path: Path, bus: LocalBus) -> AsyncIterator[Running]:
    app = create_membership_app(MembershipSettings(data_dir=tmp_path, outbox_poll_interval_s=0.05), bus=bus)
    async with running(app) as service:
        yield service


@pytest.fixture
async def engagement(tmp_path: Path, bus: LocalBus) -> AsyncIterator[Running]:
    app = create_engagement_app(EngagementSettings(data_dir=tmp_path, outbox_poll_interval_s=0.05), bus=bus)
    async with running(app) as service:
        yield service
