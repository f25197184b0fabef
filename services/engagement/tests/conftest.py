"""Fixtures for engagement's tests: the real app on SQLite in tmp_path, fed events the way the bus does.

Engagement authorizes every route from the caller the gateway vouches for: the test client names the
platform operator by default (`X-Actor-Id`, signed as the gateway would); a test acting as someone else
passes its own `X-Actor-Id` header.

`engagement.feed(...)` hands an envelope to the service's own consumer (registry validation, inbox,
handler, one transaction), exactly what a bus delivery does, without the bus's polling delay; the
wiring through a real LocalBus is tested separately.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select

from engagement.app import create_app
from engagement.settings import EngagementSettings
from qunzhu_common.actor import ACTOR_HEADER, PLATFORM_OPERATOR
from qunzhu_common.bus.base import Record
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.testing import eventually, serving

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
GROUP = "telegram:-100"


class Driver:
    """The engagement app under test and the events other services would send it."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.runtime = app.state.runtime
        self._ids = itertools.count(1)
        self.delivered: list[Envelope] = []

    async def deliver(self, envelope: Envelope, topic: str | None = None) -> None:
        topic = topic or self.runtime.registry.spec_for(envelope.type, envelope.version).topic
        record = Record(topic=topic, partition=0, offset=len(self.delivered), key=envelope.community_id,
                        value=envelope.to_bytes())
        await self.runtime.consumer(record)
        self.delivered.append(envelope)

    async def feed(self, type_: str, data: BaseModel, *, community_id: str, at: datetime | None = None) -> Envelope:
        envelope = new_envelope(type=type_, data=data, source="test", community_id=community_id,
                                occurred_at=at or T0)
        await self.deliver(envelope)
        return envelope

    async def community(self, *, timezone: str = "Asia/Shanghai", owner: str = "telegram:owner") -> str:
        cid = str(uuid.uuid4())
        await self.feed("community.created", CommunityCreated(
            community_id=cid, name="增长实验室", positioning="每天一个增长实验", owner_id=owner, timezone=timezone,
            created_at=T0 - timedelta(days=90),
        ), community_id=cid)
        return cid

    async def member(self, cid: str, person: str, *, role: str = "member", status: str = "active",
                     joined_at: datetime | None = None, type_: str = "member.activated", name: str = "") -> None:
        joined_at = joined_at or T0 - timedelta(days=80)
        await self.feed(type_, MemberChanged(
            community_id=cid, member_id=person, role=role, status=status, joined_at=joined_at,
            changed_at=joined_at, display_name=name,
        ), community_id=cid)

    async def message(self, cid: str, person: str, text: str, at: datetime, *, group: str = GROUP,
                      **fields: Any) -> Envelope:
        n = next(self._ids)
        return await self.feed("chat.message.posted", ChatMessagePosted(
            platform="telegram", group_id=group, delivery_id=f"d{n}", message_id=fields.pop("message_id", f"m{n}"),
            sender_id=person, text=text, sent_at=at, **fields,
        ), community_id=cid, at=at)

    async def command(self, cid: str, person: str, command: str, at: datetime, *, argument: str = "",
                      group: str = GROUP, message_id: str | None = None) -> Envelope:
        n = next(self._ids)
        return await self.feed("chat.command.issued", ChatCommandIssued(
            platform="telegram", group_id=group, delivery_id=f"d{n}", message_id=message_id or f"m{n}",
            sender_id=person, command=command, argument=argument, sent_at=at,
        ), community_id=cid, at=at)

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def points(self, cid: str, person: str) -> int:
        return (await self.get(f"/communities/{cid}/members/{person}/points"))["total_points"]

    async def outbox_events(self, type_: str | None = None) -> list[Envelope]:
        table = self.runtime.spec.outbox_table
        async with self.runtime.session_maker() as session:
            rows = (await session.execute(select(table.c.payload).order_by(table.c.seq))).scalars().all()
        events = [Envelope.from_bytes(bytes(p)) for p in rows]
        return [e for e in events if type_ is None or e.type == type_]


@asynccontextmanager
async def running(app: FastAPI, *, caller: str | None = PLATFORM_OPERATOR) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process; requests name `caller` (signed as the gateway would) unless they name another."""
    async with serving(app) as client:
        if caller is not None:
            client.headers[ACTOR_HEADER] = caller
        yield client


def settings(tmp_path: Path, **overrides: Any) -> EngagementSettings:
    values: dict[str, Any] = {"outbox_poll_interval_s": 0.05, "run_relay": False, **overrides}
    return EngagementSettings(data_dir=tmp_path, **values)


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
async def engagement(tmp_path: Path, bus: LocalBus) -> AsyncIterator[Driver]:
    """Engagement with its consumer fed directly (`feed`) and its outbox left unpublished for inspection."""
    app = create_app(settings(tmp_path, run_consumers=False), bus=bus)
    async with running(app) as client:
        yield Driver(app, client)


@pytest.fixture
def make_engagement(tmp_path: Path, bus: LocalBus):
    """Factory for an engagement app with other settings (e.g. a second instance for replay)."""

    @asynccontextmanager
    async def make(name: str = "second", **overrides: Any) -> AsyncIterator[Driver]:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        app = create_app(settings(directory, **overrides), bus=bus)
        async with running(app) as client:
            yield Driver(app, client)

    return make
