"""Group activities on the real stack: Kafka, PostgreSQL, engagement as its own process.

A lottery entered by chat keyword (chat.events.v1 on Kafka) and through the API, drawn once, checked
by recomputing the winners from the revealed seed; a sign-up chain hammered by concurrent sign-ups on
PostgreSQL; a level reached by a check-in congratulated through engagement's own events topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMemberJoined, ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry
from tests.integration.probes import eventually, produce, query, read_topic
from tests.integration.stack import Stack, operator_client

pytestmark = pytest.mark.integration

GROUP = "telegram:-8801"


def record(type_: str, data, cid: str) -> tuple[str, bytes, bytes]:
    envelope = new_envelope(type=type_, data=data, source="it", community_id=cid, occurred_at=datetime.now(UTC))
    topic, key = default_registry().route(envelope)
    return topic, key.encode(), envelope.to_bytes()


async def send(stack: Stack, records: list[tuple[str, bytes, bytes]]) -> None:
    for topic in dict.fromkeys(r[0] for r in records):
        await produce(stack.kafka.bootstrap, topic, [(k, v) for t, k, v in records if t == topic])


async def community_with(stack: Stack, people: list[str]) -> str:
    cid = str(uuid.uuid4())
    now = datetime.now(UTC)
    records = [record("community.created", CommunityCreated(
        community_id=cid, name="活动实验室", positioning="活动让群活起来", owner_id="telegram:8800", created_at=now,
    ), cid)] + [record("member.activated", MemberChanged(
        community_id=cid, member_id=p, role="member", status="active", joined_at=now, changed_at=now,
    ), cid) for p in people]
    await send(stack, records)

    async def known() -> int:  # the members themselves, not just the community (points answer for anyone)
        rows = await query(stack.postgres.url("engagement"),
                           "SELECT count(*) AS n FROM member_copy WHERE community_id = $1 AND person_id = ANY($2)",
                           cid, people)
        return int(rows[0]["n"])

    await eventually(known, until=lambda n: n == len(people), what="the community's members in engagement")
    return cid


async def engagement_events(stack: Stack, cid: str, type_: str) -> list[dict]:
    values = [json.loads(r.value) for r in await read_topic(stack.kafka.bootstrap, "engagement.events.v1")]
    return [v for v in values if v["community_id"] == cid and v["type"] == type_]


async def test_a_lottery_entered_in_chat_and_api_is_drawn_once_and_verifiable(stack: Stack) -> None:
    people = [f"telegram:88{i:02d}" for i in range(1, 7)]
    cid = await community_with(stack, people)
    url = stack["engagement"].url
    async with operator_client(timeout=10) as client:
        created = await client.post(f"{url}/communities/{cid}/lotteries", json={
            "title": "周五福利夜", "prize": "《增长黑客》一本", "group_id": GROUP, "winners_count": 2,
            "keyword": "我要抽奖", "closes_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
        assert created.status_code == 201, created.text
        lottery = created.json()
        lid, commitment = lottery["id"], lottery["seed_commitment"]

        now = datetime.now(UTC)
        chat = [record("chat.message.posted", ChatMessagePosted(
            platform="telegram", group_id=GROUP, delivery_id=f"{cid}-{p}", message_id=f"m-{p}", sender_id=p,
            text="我要抽奖", sent_at=now), cid) for p in people[:4]]
        await send(stack, chat)
        await send(stack, chat[:2])  # redelivered by the platform: no second entry
        entries = await asyncio.gather(*(client.post(f"{url}/communities/{cid}/lotteries/{lid}/entries",
                                                     json={"person_id": p}) for p in people[3:] * 2))
        assert all(r.status_code in (200, 201) for r in entries), [r.text for r in entries]

        async def entrants() -> dict:
            return (await client.get(f"{url}/communities/{cid}/lotteries/{lid}/entrants")).json()

        listed = await eventually(entrants, until=lambda e: len(e["entrants"]) == 6, what="six entrants")
        assert listed["entrants"] == sorted(people)

        # The window ends (moved on the database: nobody waits an hour in a test).
        await query(stack.postgres.url("engagement"),
                    "UPDATE lottery SET closes_at = now() - interval '1 second' WHERE id = $1", lid)
        late = await client.post(f"{url}/communities/{cid}/lotteries/{lid}/entries",
                                 json={"person_id": "telegram:8899"})
        assert late.status_code == 409 and late.headers["content-type"] == "application/problem+json"
        draws = await asyncio.gather(*(client.post(f"{url}/communities/{cid}/lotteries/{lid}/draw") for _ in range(3)))
        assert sorted(r.status_code for r in draws) == [200, 409, 409]
        result = next(r.json() for r in draws if r.status_code == 200)

    # A third party checks the draw with nothing but the published data.
    seed = result["seed"]
    assert hashlib.sha256(seed.encode()).hexdigest() == commitment
    tickets = {p: hashlib.sha256(f"{seed}\n{p}".encode()).hexdigest() for p in listed["entrants"]}
    assert result["winners"] == sorted(tickets, key=lambda p: (tickets[p], p))[:2]

    opened = await eventually(lambda: engagement_events(stack, cid, "lottery.opened"), until=lambda e: len(e) == 1,
                              what="lottery.opened on Kafka")
    assert opened[0]["data"]["seed_commitment"] == commitment
    drawn = await eventually(lambda: engagement_events(stack, cid, "lottery.drawn"), until=lambda e: len(e) == 1,
                             what="lottery.drawn on Kafka")
    assert drawn[0]["data"]["winners"] == result["winners"] and drawn[0]["data"]["seed"] == seed

    async def announcements() -> list[str]:
        values = [json.loads(r.value) for r in await read_topic(stack.kafka.bootstrap, "chat.actions.v1")]
        return [v["data"]["text"] for v in values if v["type"] == "chat.action.requested"
                and v["data"]["action_id"] == f"lottery:{lid}:drawn"]

    texts = await eventually(announcements, until=lambda t: len(t) == 1, what="the draw announced to the bot")
    assert seed in texts[0]


async def test_concurrent_signups_on_postgres_never_lose_or_duplicate_a_line(stack: Stack) -> None:
    people = [f"telegram:89{i:02d}" for i in range(30)]
    cid = await community_with(stack, people)
    url = stack["engagement"].url
    async with operator_client(timeout=30) as client:
        chain = (await client.post(f"{url}/communities/{cid}/chains", json={
            "title": "周六线下聚会", "group_id": GROUP, "capacity": 12})).json()
        responses = await asyncio.gather(*(client.post(f"{url}/communities/{cid}/chains/{chain['id']}/signups",
                                                       json={"person_id": p}) for p in people + people[:10]))
        assert sorted(r.status_code for r in responses) == [200] * 10 + [201] * 30, [r.text for r in responses]
        listed = (await client.get(f"{url}/communities/{cid}/chains/{chain['id']}")).json()
    lines = listed["confirmed"] + listed["waitlist"]
    assert [x["position"] for x in lines] == list(range(1, 31))
    assert sorted(x["person_id"] for x in lines) == sorted(people)
    assert (len(listed["confirmed"]), len(listed["waitlist"])) == (12, 18)
    told = {r.json()["person_id"]: r.json()["position"] for r in responses if r.status_code == 201}
    assert told == {x["person_id"]: x["position"] for x in lines}
    rows = await query(stack.postgres.url("engagement"),
                       "SELECT count(*) AS n, count(DISTINCT seq) AS seqs FROM chain_signup WHERE chain_id = $1",
                       chain["id"])
    assert (rows[0]["n"], rows[0]["seqs"]) == (30, 30)


async def test_a_level_reached_is_congratulated_through_engagements_own_topic(stack: Stack) -> None:
    person = "telegram:8950"
    cid = await community_with(stack, [person])
    now = datetime.now(UTC)
    await send(stack, [
        record("chat.member.joined", ChatMemberJoined(
            platform="telegram", group_id=GROUP, delivery_id=f"{cid}-join", member_id=person, joined_at=now), cid),
    ])
    await send(stack, [
        record("chat.command.issued", ChatCommandIssued(
            platform="telegram", group_id=GROUP, delivery_id=f"{cid}-ck", message_id="ck1", sender_id=person,
            command="checkin", sent_at=now + timedelta(seconds=1)), cid),
    ])
    url = stack["engagement"].url
    async with operator_client(timeout=10) as client:
        async def congratulations() -> list:
            response = await client.get(f"{url}/communities/{cid}/celebrations")
            return response.json() if response.status_code == 200 else []

        rows = await eventually(congratulations, until=lambda r: len(r) == 1, what="the congratulation")
    assert (rows[0]["kind"], rows[0]["status"], rows[0]["group_id"]) == ("level", "posted", GROUP)
    posted = await eventually(lambda: engagement_events(stack, cid, "celebration.posted"),
                              until=lambda e: len(e) == 1, what="celebration.posted on Kafka")
    assert posted[0]["data"]["person_id"] == person
