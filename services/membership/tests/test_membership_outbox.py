"""Membership's outbox: state and events commit together, and the relay publishes each event once."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from membership import service
from membership.app import create_app
from membership.models import Community, CommunityCreate, outbox_table
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.events.envelope import Envelope
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS
from qunzhu_common.outbox import OutboxRelay
from qunzhu_common.testing import GatewayActorAuth, app_internal_key  # noqa: E402

OPERATOR = {"X-Actor-Id": "platform-operator"}  # creates communities for the owner_id given


class Abort(Exception):
    pass


async def _outbox_count(session_maker) -> int:
    async with session_maker() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox_table)))


async def test_a_rolled_back_transaction_leaves_neither_community_nor_event(app, client, bus, community_body):
    runtime = app.state.runtime
    created_id = None

    with pytest.raises(Abort):
        async with runtime.session_maker() as session, session.begin():
            community = await service.create_community(
                session, ctx=app.state.membership, data=CommunityCreate(**community_body()), owner_id="owner-1"
            )
            created_id = community.id
            # Both rows exist inside the transaction…
            assert await session.scalar(select(func.count()).select_from(outbox_table)) == 1
            raise Abort("the caller fails after the service call")

    # …and neither survives it.
    assert (await client.get(f"/communities/{created_id}")).status_code == 404
    assert await _outbox_count(runtime.session_maker) == 0
    await runtime.relay.drain()
    assert await bus.read_all(MEMBERSHIP_EVENTS) == []


async def test_each_created_community_is_published_once_and_marked(
    app, client, bus, community_body, eventually
):
    ids = [
        (await client.post("/communities", json=community_body(name=f"c{i}"), headers=OPERATOR)).json()["id"]
        for i in range(5)
    ]

    async def published() -> list:
        return await bus.read_all(MEMBERSHIP_EVENTS)

    await eventually(lambda: _len_at_least(published, 5), what="five events on the bus")
    await app.state.runtime.relay.drain()  # nothing left: a second pass publishes nothing more
    records = await bus.read_all(MEMBERSHIP_EVENTS)

    assert sorted(r.key for r in records) == sorted(ids)
    assert sorted(Envelope.from_bytes(r.value).community_id for r in records) == sorted(ids)
    assert await app.state.runtime.relay.backlog() == 0
    produced = (
        'qunzhu_membership_events_produced_total{topic="membership.events.v1",type="community.created"}'
    )

    async def produced_five() -> bool:
        return f"{produced} 5.0" in (await client.get("/metrics")).text

    await eventually(produced_five, what="five events counted as produced")


async def test_events_wait_in_the_outbox_while_the_bus_is_down(tmp_path, community_body):
    from membership.settings import MembershipSettings

    up_bus = LocalBus(tmp_path / "up.sqlite3")
    await up_bus.start()
    # The app's own relay is off: a relay on a bus that is down publishes by hand below.
    app = create_app(MembershipSettings(data_dir=tmp_path, run_relay=False), bus=up_bus)
    down_bus = LocalBus(tmp_path / "bus-down.sqlite3")  # never started yet: unreachable
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t",
            auth=GatewayActorAuth(lambda: app_internal_key(app))) as client:
                created = await client.post("/communities", json=community_body(), headers=OPERATOR)
            assert created.status_code == 201  # the write does not depend on the bus
            runtime = app.state.runtime
            relay = OutboxRelay(
                session_maker=runtime.session_maker, table=outbox_table, bus=down_bus, service="membership"
            )

            with pytest.raises(RuntimeError, match="not started"):
                await relay.publish_batch()
            assert await relay.backlog() == 1  # kept, not lost

            await down_bus.start()  # the bus comes back
            await relay.drain()
            assert await relay.backlog() == 0
            (record,) = await down_bus.read_all(MEMBERSHIP_EVENTS)
            assert record.key == created.json()["id"]
    finally:
        await down_bus.stop()
        await up_bus.stop()


async def test_timestamps_written_in_shanghai_come_back_as_the_same_instant_in_utc(app, client):
    runtime = app.state.runtime
    shanghai_evening = datetime(2026, 11, 26, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    async with runtime.session_maker() as session, session.begin():
        session.add(
            Community(
                id="c-sh",
                name="n",
                positioning="p",
                owner_id="o",
                entry_policies=["free"],
                created_at=shanghai_evening,
            )
        )

    async with runtime.session_maker() as session:
        stored = await session.get(Community, "c-sh")
    assert stored.created_at == shanghai_evening
    assert stored.created_at.tzinfo is UTC
    body = (await client.get("/communities/c-sh")).json()
    assert datetime.fromisoformat(body["created_at"]) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def _len_at_least(fetch, n: int) -> bool:
    return len(await fetch()) >= n
