"""Factories for membership's tests: the real app on SQLite files in tmp_path, a real LocalBus, a fake clock.

`Harness` drives the service the way its users do: HTTP requests with `X-Actor-Id`, consumed events
delivered through the service's own consumer (inbox included), scheduler passes on demand. It reads what
the service emitted from its outbox, so assertions see exactly the events and bot actions it produced.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select

from membership.app import create_app
from membership.clock import FakeClock
from membership.models import outbox_table
from membership.settings import MembershipSettings
from qunzhu_common.bus.base import Record
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.events.contracts.chat import (
    ChatMemberJoined,
    ChatMemberLeft,
    ChatMemberRenamed,
    ChatMessagePosted,
)
from qunzhu_common.events.contracts.payments import PaymentRefunded, PaymentSucceeded
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.testing import GatewayActorAuth, app_internal_key, eventually

START = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
OWNER = "wecom:owner"


def community_body(**overrides) -> dict:
    body = {"name": "晨读营", "positioning": "每天早上一起读十页书", "owner_id": "wecom:owner-1"}
    body.update(overrides)
    return body


def membership_settings(data_dir: Path, **overrides) -> MembershipSettings:
    values: dict[str, Any] = dict(data_dir=data_dir, outbox_poll_interval_s=0.05, run_scheduler=False)
    values.update(overrides)
    return MembershipSettings(**values)


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
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head per run; each test starts from a copy (the app still checks head)."""
    from membership.app import MIGRATIONS_DIR
    from qunzhu_common.db.migrate import upgrade_head

    path = tmp_path_factory.mktemp("template") / "membership.sqlite3"
    upgrade_head(MIGRATIONS_DIR, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def app(tmp_path: Path, bus: LocalBus, clock: FakeClock, migrated_template: Path) -> AsyncIterator[FastAPI]:
    """The membership app with its lifespan running (migrated database, relay on `bus`), consumers off:
    tests deliver events through `Harness.deliver` (the same consumer, inbox included)."""
    shutil.copyfile(migrated_template, tmp_path / "membership.sqlite3")
    app = create_app(membership_settings(tmp_path, run_consumers=False), bus=bus, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Talks to the app as the gateway would: a request's `X-Actor-Id` goes with a valid assertion."""
    auth = GatewayActorAuth(lambda: app_internal_key(app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", auth=auth) as client:
        yield client


class Harness:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> None:
        self.app, self.client, self.clock = app, client, clock
        client.auth = GatewayActorAuth(lambda: app_internal_key(app))  # callers named as the gateway vouches
        self.runtime = app.state.runtime
        self._ids = itertools.count(1)

    # -- HTTP ---------------------------------------------------------------------------------------------
    async def call(self, method: str, path: str, actor: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if actor is not None:
            headers["X-Actor-Id"] = actor
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, actor: str | None = None, status: int | tuple = (200, 201),
                 **kwargs: Any) -> Any:
        response = await self.call(method, path, actor, **kwargs)
        expected = status if isinstance(status, tuple) else (status,)
        assert response.status_code in expected, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def community(self, owner: str = OWNER, **body: Any) -> dict:
        body = {"name": f"社群{next(self._ids)}", "positioning": "每天一个增长实验", **body}
        return await self.ok("POST", "/communities", owner, json=body, status=201)

    async def plan(self, cid: str, owner: str = OWNER, **body: Any) -> dict:
        body = {"name": "年费", "price_fen": 100_000, "term_type": "fixed_duration", "duration_days": 365, **body}
        return await self.ok("POST", f"/communities/{cid}/plans", owner, json=body, status=201)

    async def group(self, cid: str, external_id: str, owner: str = OWNER, **body: Any) -> dict:
        body = {"platform": "wecom", "external_id": external_id, **body}
        return await self.ok("POST", f"/communities/{cid}/groups", owner, json=body, status=201)

    async def join(self, cid: str, person: str, **body: Any) -> dict:
        return await self.ok("POST", f"/communities/{cid}/join", person, json=body)

    async def member(self, cid: str, person: str, actor: str | None = None) -> dict:
        return await self.ok("GET", f"/communities/{cid}/members/{person}", actor or "service:test")

    async def access(self, cid: str, person: str, **params: Any) -> dict:
        return await self.ok("GET", f"/communities/{cid}/access", "service:test",
                             params={"member_id": person, **params})

    # -- consumed events ------------------------------------------------------------------------------------
    def envelope(self, type_: str, data: BaseModel, community_id: str) -> Envelope:
        return new_envelope(type=type_, data=data, source="gateway", community_id=community_id)

    async def deliver(self, envelope: Envelope, topic: str | None = None) -> None:
        """Hand a record to the service's consumer exactly as the bus does (inbox, transaction, handler)."""
        spec = self.runtime.registry.spec_for(envelope.type, envelope.version)
        record = Record(topic=topic or spec.topic, partition=0, offset=0, key=envelope.community_id,
                        value=envelope.to_bytes())
        await self.runtime.consumer(record)

    async def send(self, type_: str, data: BaseModel, community_id: str) -> Envelope:
        envelope = self.envelope(type_, data, community_id)
        await self.deliver(envelope)
        return envelope

    def payment(self, cid: str, payer: str, plan_id: str, amount_fen: int, *, payment_id: str | None = None,
                paid_at: datetime | None = None, referrer_id: str | None = None) -> Envelope:
        return self.envelope("payment.succeeded", PaymentSucceeded(
            payment_id=payment_id or f"pay-{uuid.uuid4().hex[:10]}", provider="wechatpay", payer_id=payer,
            plan_id=plan_id, amount_fen=amount_fen, referrer_id=referrer_id, paid_at=paid_at or self.clock(),
        ), cid)

    def refund(self, cid: str, payment_id: str, amount_fen: int, *, refund_id: str | None = None,
               refunded_at: datetime | None = None, reason: str = "") -> Envelope:
        return self.envelope("payment.refunded", PaymentRefunded(
            payment_id=payment_id, refund_id=refund_id or f"re-{uuid.uuid4().hex[:10]}", provider="wechatpay",
            amount_fen=amount_fen, reason=reason, refunded_at=refunded_at or self.clock(),
        ), cid)

    async def pay(self, cid: str, payer: str, plan_id: str, amount_fen: int, **kw: Any) -> Envelope:
        envelope = self.payment(cid, payer, plan_id, amount_fen, **kw)
        await self.deliver(envelope)
        return envelope

    async def chat_join(self, cid: str, group_id: str, person: str, name: str = "") -> None:
        platform, _ = group_id.split(":", 1)
        await self.send("chat.member.joined", ChatMemberJoined(
            platform=platform, group_id=group_id, delivery_id=uuid.uuid4().hex, member_id=person,
            display_name=name, joined_at=self.clock()), cid)

    async def chat_leave(self, cid: str, group_id: str, person: str) -> None:
        platform, _ = group_id.split(":", 1)
        await self.send("chat.member.left", ChatMemberLeft(
            platform=platform, group_id=group_id, delivery_id=uuid.uuid4().hex, member_id=person,
            left_at=self.clock()), cid)

    async def chat_rename(self, cid: str, group_id: str, person: str, name: str) -> None:
        platform, _ = group_id.split(":", 1)
        await self.send("chat.member.renamed", ChatMemberRenamed(
            platform=platform, group_id=group_id, delivery_id=uuid.uuid4().hex, member_id=person,
            display_name=name, renamed_at=self.clock()), cid)

    async def chat_message(self, cid: str, group_id: str, person: str, text: str) -> None:
        platform, _ = group_id.split(":", 1)
        await self.send("chat.message.posted", ChatMessagePosted(
            platform=platform, group_id=group_id, delivery_id=uuid.uuid4().hex, message_id=uuid.uuid4().hex,
            sender_id=person, text=text, sent_at=self.clock()), cid)

    # -- what the service emitted ---------------------------------------------------------------------------
    async def emitted(self, type_: str | None = None, community_id: str | None = None) -> list[Envelope]:
        async with self.runtime.session_maker() as session:
            rows = (await session.execute(select(outbox_table.c.payload).order_by(outbox_table.c.seq))).all()
        envelopes = [Envelope.from_bytes(bytes(r.payload)) for r in rows]
        return [e for e in envelopes if (type_ is None or e.type == type_)
                and (community_id is None or e.community_id == community_id)]

    async def actions(self, action: str | None = None, member_id: str | None = None) -> list[dict]:
        return [e.data for e in await self.emitted("chat.action.requested")
                if (action is None or e.data["action"] == action)
                and (member_id is None or e.data.get("member_id") == member_id)]

    async def run_scheduler(self) -> dict[str, int]:
        return await self.app.state.scheduler.run_once()


@pytest.fixture
def h(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> Harness:
    return Harness(app, client, clock)
