"""Deliveries arriving together share one commit; each still gets its own, exact answer."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker as make_sessions
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.webhooks.batcher import GroupCommitter
from gateway.webhooks.verify import sign_standard


async def test_concurrent_deliveries_and_replays_are_each_answered_exactly(gateway, admin_headers, outbox_events):
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    created = await gateway.client.post("/api/v1/communities/c-1/connectors", headers=admin_headers, json={
        "community_id": "c-1", "platform": "generic", "groups": ["g"], "secrets": {"signing_secrets": [secret]}})
    url = f"/webhooks/chat/{created.json()['id']}"

    def delivery(i: int) -> tuple[bytes, dict]:
        body = json.dumps({"type": "message", "group_id": "g", "message_id": str(i), "sender_id": "u",
                           "text": f"第 {i} 条"}).encode()
        stamp = int(time.time())
        return body, {"webhook-id": f"m-{i}", "webhook-timestamp": str(stamp),
                      "webhook-signature": sign_standard(secret, f"m-{i}", stamp, body)}

    # 40 distinct deliveries, each sent three times at once: 40 accepted, 80 duplicates, 40 events.
    sends = [delivery(i) for i in range(40)] * 3
    answers = await asyncio.gather(*(gateway.client.post(url, content=b, headers=h) for b, h in sends))

    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("accepted") == 40 and statuses.count("duplicate") == 80
    events = await outbox_events(gateway.app)
    assert sorted(int(e.data["message_id"]) for e in events) == list(range(40))


@pytest.fixture
async def sessions(tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'batch.sqlite3'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v TEXT PRIMARY KEY)"))
    yield make_sessions(engine, expire_on_commit=False)
    await engine.dispose()


async def test_one_failing_write_does_not_fail_its_batch_neighbours(sessions):
    async def run_each(session, writes):
        return [await write(session) for write in writes]

    committer = GroupCommitter(sessions, run_each)

    def insert(value: str):
        async def write(session):
            await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
            return value
        return write

    async def broken(session):
        raise RuntimeError("this delivery cannot be written")

    # Queue everything before the writer starts, so they land in one batch.
    futures = [asyncio.ensure_future(committer.submit(w)) for w in (insert("a"), broken, insert("b"))]
    await asyncio.sleep(0)
    committer.start()
    try:
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        await committer.stop()

    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], RuntimeError)
    async with sessions() as session:
        assert sorted((await session.execute(text("SELECT v FROM t"))).scalars()) == ["a", "b"]
