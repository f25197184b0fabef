"""Engagement on the real stack: events on Kafka → scored on PostgreSQL → points, leaderboard, replay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry
from tests.integration.probes import eventually, produce, query, read_topic
from tests.integration.stack import Stack, operator_client

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def record(type_: str, data, cid: str) -> tuple[str, bytes, bytes]:
    envelope = new_envelope(type=type_, data=data, source="it", community_id=cid, occurred_at=T0)
    topic, key = default_registry().route(envelope)
    return topic, key.encode(), envelope.to_bytes()


async def send(stack: Stack, records: list[tuple[str, bytes, bytes]]) -> None:
    for topic in dict.fromkeys(r[0] for r in records):
        await produce(stack.kafka.bootstrap, topic, [(k, v) for t, k, v in records if t == topic])


async def test_chat_activity_is_scored_on_postgres_and_replay_agrees(stack: Stack) -> None:
    cid = str(uuid.uuid4())
    a, b = "telegram:7001", "telegram:7002"
    membership = [record("community.created", CommunityCreated(
        community_id=cid, name="增长实验室", positioning="每天一个增长实验", owner_id="telegram:7000", created_at=T0,
    ), cid)] + [record("member.activated", MemberChanged(
        community_id=cid, member_id=p, role="member", status="active", joined_at=T0, changed_at=T0,
    ), cid) for p in (a, b)]
    chat = []
    for i in range(6):
        chat.append(record("chat.message.posted", ChatMessagePosted(
            platform="telegram", group_id="telegram:-7", delivery_id=f"{cid}-m{i}", message_id=f"m{i}",
            sender_id=a if i % 2 else b, text=f"第{i}个增长实验的复盘", sent_at=T0 + timedelta(seconds=20 * i),
        ), cid))
    chat.append(record("chat.command.issued", ChatCommandIssued(
        platform="telegram", group_id="telegram:-7", delivery_id=f"{cid}-c", message_id="c1", sender_id=a,
        command="checkin", sent_at=T0), cid))
    await send(stack, chat)  # before the members are known: kept, scored later
    await send(stack, membership)
    await send(stack, chat[:2])  # redelivered: no second effect

    url = stack["engagement"].url
    async with operator_client(timeout=10) as client:
        async def board() -> list:
            response = await client.get(f"{url}/communities/{cid}/leaderboard", params={"window": "all"})
            return response.json().get("data", []) if response.status_code == 200 else []

        # Messages 20 s apart: the 60 s cooldown slots leave a 2 (+5 check-in) and b 2.
        data = await eventually(board, until=lambda d: [(e["person_id"], e["points"]) for e in d] == [(a, 7), (b, 2)],
                                what="the leaderboard")
        assert [e["rank"] for e in data] == [1, 2]
        replay = (await client.post(f"{url}/communities/{cid}/replay")).json()
        assert (replay["equal"], replay["ledger_identical"], replay["activities"]) == (True, True, 7)
        standing = (await client.get(f"{url}/communities/{cid}/members/{a}/standing")).json()
        assert (standing["rank"], standing["level"], standing["points_to_next_level"]) == (1, 2, 13)

    dsn = stack.postgres.url("engagement")
    rows = await query(dsn, "SELECT count(*) AS n, sum(points) AS p FROM points_ledger WHERE community_id = $1", cid)
    assert (rows[0]["n"], rows[0]["p"]) == (5, 9)

    async def awarded() -> list:
        return [json.loads(r.value) for r in await read_topic(stack.kafka.bootstrap, "engagement.events.v1")
                if json.loads(r.value)["community_id"] == cid and json.loads(r.value)["type"] == "points.awarded"]

    events = await eventually(awarded, until=lambda e: len(e) == 5, what="points.awarded on Kafka")
    assert sorted(e["data"]["rule"] for e in events) == ["checkin@v0"] + ["effective_message@v0"] * 4
