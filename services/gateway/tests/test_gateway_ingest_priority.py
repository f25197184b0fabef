"""Webhook ingest never queues behind background work for embedded mode's one SQLite write connection
(issue #19): while a background worker holds a write transaction (here: sleeping in it) and more background
work waits, every webhook that arrives is accepted as soon as the worker's transaction ends, ahead of the
queued background work, and well within the bounded wait. No timing is asserted; the deadline only
detects a hang."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import httpx
from sqlalchemy import text

from gateway.webhooks.verify import sign_standard
from qunzhu_common.db.writegate import background_priority

HANG = 20
WORKERS = 6


async def test_webhooks_are_accepted_while_a_background_worker_holds_the_write_transaction(
    gateway, admin_headers, outbox_events, eventually
):
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    created = await gateway.client.post("/api/v1/communities/c-1/connectors", headers=admin_headers, json={
        "community_id": "c-1", "platform": "generic", "groups": ["g"], "secrets": {"signing_secrets": [secret]}})
    assert created.status_code == 201, created.text
    url = f"/webhooks/chat/{created.json()['id']}"
    runtime = gateway.app.state.runtime
    gate = runtime.write_gate
    order: list[str] = []
    holding, release = asyncio.Event(), asyncio.Event()

    async def stalled_worker() -> None:
        with background_priority():
            async with runtime.session_maker() as session, session.begin():
                await session.execute(text("SELECT 1"))
                holding.set()
                await release.wait()  # a worker stuck inside its transaction

    async def queued_worker(i: int) -> None:
        with background_priority():
            async with runtime.session_maker() as session, session.begin():
                await session.execute(text("SELECT 1"))
                order.append(f"worker-{i}")

    def delivery(i: int) -> tuple[bytes, dict]:
        body = json.dumps({"type": "message", "group_id": "g", "message_id": str(i), "sender_id": "u",
                           "text": f"第 {i} 条"}).encode()
        stamp = int(time.time())
        return body, {"webhook-id": f"m-{i}", "webhook-timestamp": str(stamp),
                      "webhook-signature": sign_standard(secret, f"m-{i}", stamp, body)}

    async def send(i: int) -> str:
        body, headers = delivery(i)
        answer = await gateway.client.post(url, content=body, headers=headers)
        order.append(f"webhook-{i}")
        return f"{answer.status_code} {answer.json().get('status')}"

    stalled = asyncio.create_task(stalled_worker())
    await asyncio.wait_for(holding.wait(), HANG)
    workers = [asyncio.create_task(queued_worker(i)) for i in range(WORKERS)]
    await eventually(lambda: gate.waiting("background") == WORKERS, within=HANG, what="the workers queued")
    webhooks = [asyncio.create_task(send(i)) for i in range(8)]
    await eventually(lambda: gate.waiting("request") >= 1, within=HANG, what="a webhook queued")
    await asyncio.sleep(0.2)  # the worker goes on holding; the webhooks wait for it (within the bound)
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(*webhooks), HANG)
    await asyncio.wait_for(asyncio.gather(stalled, *workers), HANG)

    assert all(a.endswith(" accepted") and a.startswith("2") for a in answers), answers
    # Non-preemptive priority: a worker may slip in while no request is waiting (between two steps of one
    # delivery), one transaction at a time; the webhooks never wait for the queue of background work.
    last_webhook = max(order.index(f"webhook-{i}") for i in range(8))
    assert sum(1 for name in order[:last_webhook] if name.startswith("worker")) <= 2, order
    events = await outbox_events(gateway.app)
    assert sorted(int(e.data["message_id"]) for e in events) == list(range(8))


async def test_a_webhook_that_cannot_get_the_writer_within_the_bound_is_a_503_and_its_retry_is_accepted(
    standalone_gateway, tmp_path, admin_headers
):
    async with standalone_gateway(tmp_path, sqlite_write_wait_s=0.3) as gateway:
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        created = await gateway.client.post("/api/v1/communities/c-1/connectors", headers=admin_headers, json={
            "community_id": "c-1", "platform": "generic", "groups": ["g"],
            "secrets": {"signing_secrets": [secret]}})
        url = f"/webhooks/chat/{created.json()['id']}"
        body = json.dumps({"type": "message", "group_id": "g", "message_id": "1", "sender_id": "u",
                           "text": "在吗"}).encode()

        def headers() -> dict:
            stamp = int(time.time())
            return {"webhook-id": "m-1", "webhook-timestamp": str(stamp),
                    "webhook-signature": sign_standard(secret, "m-1", stamp, body)}

        runtime = gateway.app.state.runtime
        holding, release = asyncio.Event(), asyncio.Event()

        async def stalled_worker() -> None:
            with background_priority():
                async with runtime.session_maker() as session, session.begin():
                    await session.execute(text("SELECT 1"))
                    holding.set()
                    await release.wait()

        stalled = asyncio.create_task(stalled_worker())
        await asyncio.wait_for(holding.wait(), HANG)
        # As a server answers: the problem response is sent, the error only logged (not raised into the client).
        transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as platform:
                refused = await asyncio.wait_for(platform.post(url, content=body, headers=headers()), HANG)
        finally:
            release.set()
            await stalled
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
        retried = await gateway.client.post(url, content=body, headers=headers())  # the platform retries
        assert retried.status_code == 200 and retried.json()["status"] == "accepted", retried.text
