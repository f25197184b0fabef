"""Factories for content's tests: membership (the producer) and content (the consumer) on one LocalBus.

Both are the real apps with their lifespans running: migrated SQLite files in tmp_path, outbox relays,
consumers. Content can be started several times on the same files to simulate a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from content.app import create_app as create_content_app
from content.models import CommunityCopy, inbox_table
from content.settings import ContentSettings
from fastapi import FastAPI
from membership.app import create_app as create_membership_app
from membership.settings import MembershipSettings
from prometheus_client.parser import text_string_to_metric_families
from qunzhu_common.bus.delivery import RetryPolicy
from qunzhu_common.bus.local import LocalBus
from sqlalchemy import func, select


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
    """A service app whose lifespan is running, and a client that talks to it in-process."""

    app: FastAPI
    client: httpx.AsyncClient

    async def metric(self, sample: str, **labels: str) -> float:
        """A sample from the service's own /metrics (0 when the series does not exist yet)."""
        text = (await self.client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0

    async def count(self, table) -> int:
        async with self.app.state.runtime.session_maker() as session:
            return int(await session.scalar(select(func.count()).select_from(table)))


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Running]:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield Running(app, client)


def community_body(**overrides) -> dict:
    body = {"name": "晨读营", "positioning": "每天早上一起读十页书", "owner_id": "owner-1"}
    body.update(overrides)
    return body


@pytest.fixture(name="eventually")
def eventually_fixture():
    return eventually


@pytest.fixture(name="community_body")
def community_body_fixture():
    return community_body


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[LocalBus]:
    bus = LocalBus(
        tmp_path / "bus.sqlite3",
        partitions=3,
        poll_interval_s=0.05,
        policy=RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.005),
    )
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture
async def membership(tmp_path: Path, bus: LocalBus) -> AsyncIterator[Running]:
    app = create_membership_app(MembershipSettings(data_dir=tmp_path, outbox_poll_interval_s=0.05), bus=bus)
    async with running(app) as service:
        yield service


@pytest.fixture
def start_content(tmp_path: Path, bus: LocalBus) -> Callable[[], AbstractAsyncContextManager[Running]]:
    """`async with start_content() as content:` — a fresh content process on the same database file."""

    def start():
        app = create_content_app(ContentSettings(data_dir=tmp_path, outbox_poll_interval_s=0.05), bus=bus)
        return running(app)

    return start


@pytest.fixture
async def content(start_content) -> AsyncIterator[Running]:
    async with start_content() as service:
        yield service


async def copy_of(content: Running, community_id: str) -> dict | None:
    """Content's copy of a community as its API shows it, or None while it does not know it."""
    response = await content.client.get(f"/communities/{community_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(name="copy_of")
def copy_of_fixture():
    return copy_of


@pytest.fixture(name="tables")
def tables_fixture():
    return {"community_copy": CommunityCopy.__table__, "inbox": inbox_table}
