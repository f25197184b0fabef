"""The platform's delivery guarantees, proven on real Kafka and PostgreSQL with services as processes."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.integration.actions import copy_status, create_community
from tests.integration.probes import eventually, metric, produce, query, read_topic
from tests.integration.stack import Stack, operator_client

pytestmark = pytest.mark.integration

MEMBERSHIP_EVENTS = "membership.events.v1"


async def test_every_service_is_ready(stack: Stack) -> None:
    async with operator_client(timeout=10) as client:
        for svc in stack.services.values():
            response = await client.get(svc.url + "/readyz")
            assert response.status_code == 200, (svc.name, response.text)
            assert response.json()["checks"] == {"database": "ok", "bus": "ok"}
        overall = await client.get(stack["gateway"].url + "/services")
        assert overall.json()["services"] == {"membership": "ready", "content": "ready", "engagement": "ready"}


async def test_community_created_through_gateway_reaches_content_and_engagement(stack: Stack) -> None:
    async with operator_client(timeout=10) as client:
        created = await create_community(client, stack["gateway"].url, "/api/v1/communities")
        for name in ("content", "engagement"):
            await eventually(
                lambda name=name: copy_status(client, stack[name].url, created["id"]),
                until=lambda status: status == 200,
                what=f"{name} copy of the community",
            )
            copy = (await client.get(f"{stack[name].url}/communities/{created['id']}")).json()
            assert (copy["name"], copy["positioning"], copy["timezone"]) == (
                created["name"], created["positioning"], "Asia/Shanghai",
            )
    # The relay marked the event published and nothing is left behind.
    rows = await query(stack.postgres.url("membership"), "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    assert rows[0]["n"] == 0


async def test_record_delivered_twice_has_exactly_one_effect(stack: Stack) -> None:
    content = stack["content"]
    async with operator_client(timeout=10) as client:
        created = await create_community(client, stack["membership"].url)
        await eventually(lambda: copy_status(client, content.url, created["id"]), until=lambda s: s == 200)

    records = [r for r in await read_topic(stack.kafka.bootstrap, MEMBERSHIP_EVENTS)
               if json.loads(r.value).get("community_id") == created["id"]]
    assert len(records) == 1
    event_id = json.loads(records[0].value)["id"]
    duplicates_before = await metric(content.url, "qunzhu_content_events_consumed_total", outcome="duplicate")

    # The same record, byte for byte, delivered twice more.
    await produce(stack.kafka.bootstrap, MEMBERSHIP_EVENTS, [(records[0].key, records[0].value)] * 2)

    await eventually(
        lambda: metric(content.url, "qunzhu_content_events_consumed_total", outcome="duplicate"),
        until=lambda n: n >= duplicates_before + 2,
        what="content skipping both duplicates",
    )
    dsn = stack.postgres.url("content")
    assert (await query(dsn, "SELECT count(*) AS n FROM inbox WHERE event_id = $1", event_id))[0]["n"] == 1
    assert (await query(dsn, "SELECT count(*) AS n FROM community_copy WHERE id = $1", created["id"]))[0]["n"] == 1
    dead = await read_topic(stack.kafka.bootstrap, MEMBERSHIP_EVENTS + ".dlq")
    assert not [r for r in dead if event_id.encode() in r.value]


async def test_consumer_killed_mid_stream_resumes_with_exactly_once_effects(stack: Stack) -> None:
    content = stack["content"]
    total = 150
    async with operator_client(timeout=30) as client:
        first = [await create_community(client, stack["membership"].url) for _ in range(total // 2)]
        # Kill the consumer while it works through the stream, keep producing, then bring it back.
        dsn = stack.postgres.url("content")
        ids = [c["id"] for c in first]
        await eventually(
            lambda: query(dsn, "SELECT count(*) AS n FROM community_copy WHERE id = ANY($1::text[])", ids),
            until=lambda rows: rows[0]["n"] >= 5,
            what="content started consuming",
        )
        content.kill()
        second = await asyncio.gather(*(create_community(client, stack["membership"].url) for _ in range(total // 2)))
        content.start()
        content.wait_ready()

        ids += [c["id"] for c in second]
        await eventually(
            lambda: query(dsn, "SELECT count(*) AS n FROM community_copy WHERE id = ANY($1::text[])", ids),
            until=lambda rows: rows[0]["n"] == total,
            timeout=90,
            what="all copies after the restart",
        )
    events = await query(
        stack.postgres.url("membership"), "SELECT event_id FROM outbox WHERE key = ANY($1::text[])", ids
    )
    assert len(events) == total
    processed = await query(
        dsn,
        "SELECT count(*) AS n FROM inbox WHERE consumer = 'content' AND event_id = ANY($1::text[])",
        [r["event_id"] for r in events],
    )
    assert processed[0]["n"] == total
    # A second application would have broken the copy's primary key and ended in the DLQ.
    dead = await read_topic(stack.kafka.bootstrap, MEMBERSHIP_EVENTS + ".dlq")
    assert not [r for r in dead if any(i.encode() in r.value for i in ids)]
    copies = await query(dsn, "SELECT id FROM community_copy WHERE id = ANY($1::text[])", ids)
    assert sorted(r["id"] for r in copies) == sorted(ids)


async def test_poison_records_are_dead_lettered_and_do_not_block_the_partition(stack: Stack) -> None:
    content = stack["content"]
    key = str(uuid.uuid4()).encode()
    bad_payload = {
        "id": str(uuid.uuid4()), "type": "community.created", "version": 1, "source": "membership",
        "occurred_at": "2026-11-26T12:00:00Z", "community_id": key.decode(), "correlation_id": "test",
        "data": {"community_id": key.decode()},  # name, positioning, owner… missing
    }
    await produce(stack.kafka.bootstrap, MEMBERSHIP_EVENTS, [
        (key, b"{not json"),
        (key, json.dumps(bad_payload).encode()),
    ])
    async with operator_client(timeout=10) as client:
        created = await create_community(client, stack["membership"].url)
        await eventually(lambda: copy_status(client, content.url, created["id"]), until=lambda s: s == 200)

    async def dead_for_key() -> list:
        return [r for r in await read_topic(stack.kafka.bootstrap, MEMBERSHIP_EVENTS + ".dlq") if r.key == key]

    # Content, engagement and the gateway (its role projection) consume the topic: each dead-letters both once.
    dead = await eventually(dead_for_key, until=lambda rs: len(rs) == 6, what="dead-lettered records")
    headers = [dict(r.headers) for r in dead]
    assert {h["x-dlq-consumer-group"] for h in headers} == {b"content", b"engagement", b"gateway"}
    assert all(h["x-dlq-error-type"] == b"InvalidEvent" for h in headers)
    assert all(h["x-dlq-original-topic"] == MEMBERSHIP_EVENTS.encode() for h in headers)
    assert await metric(content.url, "qunzhu_content_dlq_records_total", topic=MEMBERSHIP_EVENTS) >= 2


async def test_events_wait_in_the_outbox_while_the_broker_is_down(stack: Stack) -> None:
    membership, content = stack["membership"], stack["content"]
    stack.kafka.stop()
    try:
        async with operator_client(timeout=30) as client:
            # The write succeeds without the bus: the event waits in the same transaction's outbox.
            created = await create_community(client, membership.url)
            backlog = await query(
                stack.postgres.url("membership"),
                "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL AND key = $1",
                created["id"],
            )
            assert backlog[0]["n"] == 1
            assert await copy_status(client, content.url, created["id"]) == 404
    finally:
        stack.kafka.start()
    async with operator_client(timeout=10) as client:
        await eventually(
            lambda: copy_status(client, content.url, created["id"]),
            until=lambda s: s == 200,
            timeout=120,
            what="delivery after the broker came back",
        )
    await eventually(
        lambda: metric(membership.url, "qunzhu_membership_outbox_backlog_events"),
        until=lambda n: n == 0,
        what="outbox backlog drained",
    )
