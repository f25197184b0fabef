"""Factories for content's tests: membership (the producer) and content (the consumer) on one LocalBus.

Both are the real apps with their lifespans running: migrated SQLite files in tmp_path, outbox relays,
consumers. Content can be started several times on the same files to simulate a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from content.app import create_app as create_content_app
from content.clock import FakeClock
from content.models import CommunityCopy, inbox_table
from content.settings import ContentSettings
from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.bus.delivery import RetryPolicy
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry
from qunzhu_common.testing import eventually, serving


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
    async with serving(app) as client:
        yield Running(app, client)


def community_body(**overrides) -> dict:
    body = {"name": "晨读营", "positioning": "每天早上一起读十页书", "owner_id": "wecom:owner-1"}
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
    # Imported here: only the tests that run membership depend on its app importing cleanly.
    from membership.app import create_app as create_membership_app
    from membership.settings import MembershipSettings

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


# The platform operator reads any community (as its owner), known to content or not.
PLATFORM = "platform-operator"


async def copy_of(content: Running, community_id: str) -> dict | None:
    """Content's copy of a community as its API shows it, or None while it does not know it."""
    response = await content.client.get(f"/communities/{community_id}", headers={"X-Actor-Id": PLATFORM})
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


# -- content on a fake clock, fed with membership's events directly -------------------------------------

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
OWNER, ADMIN, GUEST, MEMBER, GOLD = "wecom:owner", "wecom:admin", "wecom:guest", "wecom:member", "wecom:gold"


async def publish_event(bus: LocalBus, *, type: str, data, community_id: str, source: str = "membership") -> None:
    """Put an event on the bus exactly as its producer's outbox relay would."""
    envelope = new_envelope(type=type, data=data, source=source, community_id=community_id)
    topic, key = default_registry().route(envelope)
    await bus.publish([OutgoingRecord(topic=topic, key=key, value=envelope.to_bytes())])


async def member_event(
    bus,
    community_id: str,
    member_id: str,
    *,
    role: str = "member",
    status: str = "active",
    tier: str = "",
    type: str = "member.activated",
    at: datetime = T0,
) -> None:
    await publish_event(
        bus,
        type=type,
        community_id=community_id,
        data=MemberChanged(
            community_id=community_id,
            member_id=member_id,
            role=role,
            status=status,
            tier=tier,
            changed_at=at,
            display_name=member_id.split(":")[1],
        ),
    )


@dataclass
class Community:
    id: str
    groups: list[str]
    content: Running
    clock: FakeClock
    owner = OWNER
    admin = ADMIN
    guest = GUEST
    member = MEMBER
    gold = GOLD
    t0 = T0

    def headers(self, actor: str = OWNER) -> dict[str, str]:
        return {"X-Actor-Id": actor}

    async def post(self, path: str, body: dict | None = None, *, actor: str = OWNER, method: str = "POST"):
        return await self.content.client.request(
            method, f"/communities/{self.id}{path}", json=body, headers=self.headers(actor)
        )

    async def get(self, path: str, *, actor: str = OWNER, **params):
        return await self.content.client.get(
            f"/communities/{self.id}{path}", headers=self.headers(actor), params=params
        )

    async def tick(self) -> object:
        """One scheduler pass then one fan-out pass, at the fake clock's time."""
        result = await self.content.app.state.scheduler.run_once()
        await self.content.app.state.dispatcher.run_once()
        return result


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def start_content_at(tmp_path: Path, bus: LocalBus, clock: FakeClock):
    """Content on the fake clock, its scheduler and fan-out driven by the test (`Community.tick`)."""

    def start(db: Path | None = None, **overrides):
        settings = ContentSettings(
            data_dir=tmp_path,
            outbox_poll_interval_s=0.05,
            run_scheduler=False,
            **({"database_url": f"sqlite+aiosqlite:///{db}"} if db else {}),
            **overrides,
        )
        return running(create_content_app(settings, bus=bus, clock=clock))

    return start


async def seed_community(
    bus,
    content: Running,
    clock: FakeClock,
    *,
    groups: int = 3,
    platform: str = "wecom",
    name: str = "c1",
    timezone: str = "Asia/Shanghai",
) -> Community:
    """A community known to content, with owner, admin, guest, a member, a gold member and A groups."""
    community_id = f"{name}-{uuid.uuid4().hex[:6]}"
    await publish_event(
        bus,
        type="community.created",
        community_id=community_id,
        data=CommunityCreated(
            community_id=community_id,
            name=name,
            positioning="p",
            owner_id=OWNER,
            timezone=timezone,
            created_at=T0,
        ),
    )
    for person, role, tier in (
        (ADMIN, "admin", ""),
        (GUEST, "guest", ""),
        (MEMBER, "member", ""),
        (GOLD, "member", "gold"),
    ):
        await member_event(bus, community_id, person, role=role, tier=tier)
    community = Community(community_id, [], content, clock)

    async def projected() -> bool:
        async with content.app.state.runtime.session_maker() as session:
            from content.models import CommunityMember

            n = await session.scalar(
                select(func.count()).select_from(CommunityMember).where(CommunityMember.community_id == community_id)
            )
        return n == 5

    await eventually(projected, what="membership projection")
    for i in range(groups):
        group_id = f"{platform}:{name}-g{i:02d}"
        response = await community.post(
            "/groups", {"group_id": group_id, "role": "A" if i % 2 == 0 else "B"}, method="PUT"
        )
        assert response.status_code == 200, response.text
        community.groups.append(group_id)
    return community


@pytest.fixture
def start_content_live(tmp_path: Path, bus: LocalBus):
    """Content on the system clock with its scheduler and fan-out tasks running (as in production)."""

    def start():
        settings = ContentSettings(data_dir=tmp_path, outbox_poll_interval_s=0.05, scheduler_tick_s=0.2)
        return running(create_content_app(settings, bus=bus))

    return start


@pytest.fixture(name="seed_community")
def seed_community_fixture():
    return seed_community


@pytest.fixture(name="member_event")
def member_event_fixture():
    return member_event


@pytest.fixture(name="publish_event")
def publish_event_fixture():
    return publish_event


async def outbox_events(content: Running, type_: str | None = None) -> list[dict]:
    """Events content staged in its outbox, in order (payload envelopes as dicts)."""
    import json

    from content.models import outbox_table

    async with content.app.state.runtime.session_maker() as session:
        query = select(outbox_table.c.payload, outbox_table.c.key).order_by(outbox_table.c.seq)
        if type_ is not None:
            query = query.where(outbox_table.c.event_type == type_)
        rows = (await session.execute(query)).all()
    return [{**json.loads(bytes(r.payload)), "key": r.key} for r in rows]


@pytest.fixture(name="outbox_events")
def outbox_events_fixture():
    return outbox_events
