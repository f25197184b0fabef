"""Factories for membership's tests: the real app on SQLite files in tmp_path and a real LocalBus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from membership.app import create_app
from membership.settings import MembershipSettings
from qunzhu_common.bus.local import LocalBus


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], *, within: float = 5.0, what: str = "condition"
):
    """Poll `check` until it is true; fail the test when the deadline passes."""
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


def community_body(**overrides) -> dict:
    body = {"name": "晨读营", "positioning": "每天早上一起读十页书", "owner_id": "owner-1"}
    body.update(overrides)
    return body


def membership_settings(data_dir: Path, **overrides) -> MembershipSettings:
    return MembershipSettings(data_dir=data_dir, outbox_poll_interval_s=0.05, **overrides)


@pytest.fixture(name="eventually")
def eventually_fixture():
    return eventually


@pytest.fixture(name="community_body")
def community_body_fixture():
    return community_body


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[LocalBus]:
    bus = LocalBus(tmp_path / "bus.sqlite3", partitions=3, poll_interval_s=0.05)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def app(tmp_path: Path, bus: LocalBus) -> AsyncIterator[FastAPI]:
    """The membership app with its lifespan running (migrated database, relay on `bus`)."""
    app = create_app(membership_settings(tmp_path), bus=bus)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client
