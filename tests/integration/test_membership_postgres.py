"""Membership on a real PostgreSQL: the guarantees that depend on the database, not on SQLite's single
writer — capacity, invite uses and payments under truly concurrent transactions, and the scheduler run by
several replicas at once (row claims with FOR UPDATE SKIP LOCKED). Also the data migration on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from membership.app import create_app
from membership.clock import FakeClock
from membership.jobs import Scheduler
from membership.settings import MembershipSettings
from qunzhu_common.bus.base import Record
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.db.engine import create_engine, create_session_maker
from qunzhu_common.events.contracts.payments import PaymentSucceeded
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.testing import GatewayActorAuth, app_internal_key
from tests.integration.probes import query

pytestmark = pytest.mark.integration

OWNER = "wecom:owner"
START = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


@pytest.fixture
def database(fresh_database: Callable[[str], str]) -> str:
    return fresh_database("mb")


class Service:
    def __init__(self, app, client: httpx.AsyncClient, clock: FakeClock) -> None:
        self.app, self.client, self.clock = app, client, clock

    async def ok(self, method: str, path: str, actor: str | None = None, **kw) -> dict:
        headers = {"X-Actor-Id": actor} if actor else {}
        response = await self.client.request(method, path, headers=headers, **kw)
        assert response.status_code in (200, 201, 204), response.text
        return response.json() if response.content else {}

    async def deliver(self, envelope: Envelope) -> None:
        runtime = self.app.state.runtime
        spec = runtime.registry.spec_for(envelope.type, envelope.version)
        await runtime.consumer(Record(topic=spec.topic, partition=0, offset=0, key=envelope.community_id,
                                      value=envelope.to_bytes()))


@pytest.fixture
async def service(database: str, tmp_path: Path) -> AsyncIterator[Service]:
    clock = FakeClock(START)
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    settings = MembershipSettings(data_dir=tmp_path, database_url=database, run_consumers=False,
                                  run_scheduler=False, scheduler_batch_size=3)
    app = create_app(settings, bus=bus, clock=clock)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30,
                                         auth=GatewayActorAuth(lambda: app_internal_key(app))) as client:
                yield Service(app, client, clock)
    finally:
        await bus.stop()


async def test_concurrent_joins_never_overfill_a_group_on_postgres(service: Service, database: str) -> None:
    cid = (await service.ok("POST", "/communities", OWNER, json={"name": "n", "positioning": "p"}))["id"]
    await service.ok("POST", f"/communities/{cid}/groups", OWNER,
                     json={"platform": "wecom", "external_id": "small", "capacity": 5})
    await service.ok("POST", f"/communities/{cid}/groups", OWNER,
                     json={"platform": "wecom", "external_id": "next", "capacity": 100, "position": 1})

    responses = await asyncio.gather(*(
        service.client.post(f"/communities/{cid}/join", headers={"X-Actor-Id": f"wecom:p{i}"}, json={})
        for i in range(30)
    ))

    assert {r.status_code for r in responses} <= {201, 409}
    rows = await query(database.replace("+asyncpg", ""),
                       "SELECT id, member_count, capacity FROM chat_group ORDER BY id")
    counts = {r["id"]: r["member_count"] for r in rows}
    seats = await query(database.replace("+asyncpg", ""),
                        "SELECT group_id, count(*) AS n FROM seat GROUP BY group_id ORDER BY group_id")
    assert counts["wecom:small"] == 5
    assert {r["group_id"]: r["n"] for r in seats} == counts  # the counter matches the seats
    joined = sum(1 for r in responses if r.status_code == 201)
    assert counts["wecom:small"] + counts["wecom:next"] == joined


async def test_a_single_use_invite_raced_on_postgres_is_used_once(service: Service) -> None:
    cid = (await service.ok("POST", "/communities", OWNER,
                            json={"name": "n", "positioning": "p", "entry_policies": ["invite_only"]}))["id"]
    code = (await service.ok("POST", f"/communities/{cid}/invites", OWNER, json={}))["code"]

    responses = await asyncio.gather(*(
        service.client.post(f"/communities/{cid}/join", headers={"X-Actor-Id": f"wecom:r{i}"},
                            json={"invite_code": code})
        for i in range(12)
    ))

    assert [r.status_code for r in responses].count(201) == 1


async def test_one_payment_delivered_concurrently_is_applied_once_on_postgres(service: Service,
                                                                              database: str) -> None:
    cid = (await service.ok("POST", "/communities", OWNER,
                            json={"name": "n", "positioning": "p", "entry_policies": ["paid"]}))["id"]
    plan = await service.ok("POST", f"/communities/{cid}/plans", OWNER, json={
        "name": "年费", "price_fen": 100_000, "term_type": "fixed_duration", "duration_days": 365})
    await service.ok("POST", f"/communities/{cid}/join", "wecom:alice", json={})
    payment = PaymentSucceeded(payment_id="wx-pg", provider="wechatpay", payer_id="wecom:alice",
                               plan_id=plan["id"], amount_fen=100_000, paid_at=START)
    events = [new_envelope(type="payment.succeeded", data=payment, source="gateway", community_id=cid)
              for _ in range(6)]

    results = await asyncio.gather(*(service.deliver(e) for e in events), return_exceptions=True)
    for event, result in zip(events, results, strict=True):
        if isinstance(result, Exception):  # lost the race: the bus would redeliver it
            await service.deliver(event)

    dsn = database.replace("+asyncpg", "")
    assert (await query(dsn, "SELECT count(*) AS n FROM payment"))[0]["n"] == 1
    ledger = await query(dsn, "SELECT sum(amount_fen) AS total, count(*) AS n FROM ledger_entry")
    assert (ledger[0]["total"], ledger[0]["n"]) == (100_000, 2)
    activated = await query(dsn, "SELECT count(*) AS n FROM outbox WHERE event_type = 'member.activated'")
    assert activated[0]["n"] == 1


async def test_several_scheduler_replicas_expire_and_remind_each_membership_once(
    service: Service, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    cid = (await service.ok("POST", "/communities", OWNER,
                            json={"name": "n", "positioning": "p", "entry_policies": ["paid"]}))["id"]
    plan = await service.ok("POST", f"/communities/{cid}/plans", OWNER, json={
        "name": "月卡", "price_fen": 3_000, "term_type": "fixed_duration", "duration_days": 30})
    await service.ok("POST", f"/communities/{cid}/groups", OWNER, json={"platform": "wecom", "external_id": "g"})
    for g in range(1, 4):  # several groups: replicas' batches release seats across them (no deadlock)
        await service.ok("POST", f"/communities/{cid}/groups", OWNER,
                         json={"platform": "wecom", "external_id": f"g{g}", "capacity": 6, "position": g})
    people = [f"wecom:m{i}" for i in range(20)]
    for person in people:
        await service.ok("POST", f"/communities/{cid}/join", person, json={})
        if person == "wecom:m0":  # the first group only takes a few
            await service.ok("PATCH", f"/communities/{cid}/groups/wecom:g", OWNER, json={"capacity": 5})
        await service.deliver(new_envelope(
            type="payment.succeeded", source="gateway", community_id=cid,
            data=PaymentSucceeded(payment_id=f"p-{person}", provider="wechatpay", payer_id=person,
                                  plan_id=plan["id"], amount_fen=3_000, paid_at=START)))
    ctx = service.app.state.membership
    engines = [create_engine(database) for _ in range(4)]  # four replicas, four connection pools
    replicas = [Scheduler(ctx, create_session_maker(engine)) for engine in engines]
    try:
        service.clock.set(datetime(2026, 12, 25, 2, 0, tzinfo=UTC))  # 1 day before the end, 10:00 local
        await asyncio.gather(*(r.run_once() for r in replicas))
        service.clock.set(datetime(2026, 12, 27, 0, 0, tzinfo=UTC))
        await asyncio.gather(*(r.run_once() for r in replicas))
    finally:
        await asyncio.gather(*(e.dispose() for e in engines))

    dsn = database.replace("+asyncpg", "")
    by_type = {r["event_type"]: r["n"] for r in await query(
        dsn, "SELECT event_type, count(*) AS n FROM outbox GROUP BY event_type")}
    assert by_type["member.reminded"] == 20
    assert by_type["member.expired"] == 20
    removes = await query(dsn, "SELECT count(*) AS n FROM outbox WHERE event_type = 'chat.action.requested' "
                               "AND convert_from(payload, 'UTF8') LIKE '%remove_member%'")
    assert removes[0]["n"] == 20
    statuses = await query(dsn, "SELECT status, count(*) AS n FROM membership WHERE role = 'member' GROUP BY status")
    assert {r["status"]: r["n"] for r in statuses} == {"expired": 20}
    assert [r["member_count"] for r in await query(dsn, "SELECT member_count FROM chat_group")] == [0, 0, 0, 0]
    assert not [r for r in caplog.records if "rolled back" in r.getMessage()]  # no deadlock between replicas


async def test_the_migration_backfills_owners_of_existing_communities_on_postgres(database: str) -> None:
    from alembic import command

    from membership.app import MIGRATIONS_DIR
    from qunzhu_common.db.migrate import alembic_config

    config = alembic_config(MIGRATIONS_DIR, database)
    await asyncio.to_thread(command.upgrade, config, "8cfd2daacfa7")
    dsn = database.replace("+asyncpg", "")
    await query(dsn, "INSERT INTO community (id, name, positioning, timezone, owner_id, entry_policies, created_at) "
                     "VALUES ('old-1', 'n', 'p', 'Asia/Shanghai', 'wecom:old-owner', '[\"free\"]', now())")

    await asyncio.to_thread(command.upgrade, config, "head")

    rows = await query(dsn, "SELECT member_id, role, status, comp FROM membership WHERE community_id = 'old-1'")
    assert [dict(r) for r in rows] == [{"member_id": "wecom:old-owner", "role": "owner", "status": "active",
                                        "comp": True}]
