"""Concurrent lottery entries on PostgreSQL: no 500, no deadlock, every person entered exactly once.

Thirty members enter through the gateway at once, each with their own token and each twice (a double
tap), while ten more enter by chat keyword on Kafka. The API path and the chat path used to take the
community and lottery row locks in opposite orders (`deadlock detected` → 500); both now lock the
community, then the lottery, and a transaction that still loses a race is run again, never a 500.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from qunzhu_common.events.contracts.chat import ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from tests.integration.actions import bearer, owner_token
from tests.integration.probes import eventually, query
from tests.integration.stack import Stack
from tests.integration.test_engagement_activities import record, send

pytestmark = pytest.mark.integration

GROUP = "telegram:-8701"
OWNER = "telegram:8700"


async def community_known_everywhere(stack: Stack, people: list[str]) -> str:
    """A community and its members, as membership publishes them; engagement and the gateway project them."""
    cid = str(uuid.uuid4())
    now = datetime.now(UTC)
    await send(stack, [record("community.created", CommunityCreated(
        community_id=cid, name="抽奖压力测试", positioning="并发抽奖", owner_id=OWNER, created_at=now), cid)]
        + [record("member.activated", MemberChanged(
            community_id=cid, member_id=p, role="member", status="active", joined_at=now, changed_at=now), cid)
           for p in people])

    async def known(service: str, table: str, column: str) -> int:
        rows = await query(stack.postgres.url(service),
                           f"SELECT count(*) AS n FROM {table} WHERE community_id = $1 AND {column} = ANY($2)",
                           cid, [OWNER, *people])
        return int(rows[0]["n"])

    await eventually(lambda: known("engagement", "member_copy", "person_id"), until=lambda n: n >= len(people),
                     what="the members in engagement")
    await eventually(lambda: known("gateway", "member_role", "member_id"), until=lambda n: n == len(people) + 1,
                     what="the members' roles in the gateway")
    return cid


async def test_thirty_people_entering_at_once_are_each_entered_exactly_once(stack: Stack) -> None:
    api_people = [f"telegram:87{i:02d}" for i in range(1, 31)]
    chat_people = [f"telegram:874{i}" for i in range(10)]
    cid = await community_known_everywhere(stack, api_people + chat_people)
    gateway = stack["gateway"].url + "/api/v1/engagement"
    data_dir = Path(stack["gateway"].env["GATEWAY_DATA_DIR"])
    tokens = {p: bearer(owner_token(data_dir, subject=p)) for p in [OWNER, *api_people]}
    engagement_log = stack["engagement"].log_path
    log_start = engagement_log.stat().st_size

    async with httpx.AsyncClient(timeout=60) as client:
        created = await client.post(f"{gateway}/communities/{cid}/lotteries", headers=tokens[OWNER], json={
            "title": "并发福利夜", "prize": "一本书", "group_id": GROUP, "winners_count": 3, "keyword": "抽我",
            "closes_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
        assert created.status_code == 201, created.text
        lid = created.json()["id"]
        entries_url = f"{gateway}/communities/{cid}/lotteries/{lid}/entries"

        now = datetime.now(UTC)
        chat = [record("chat.message.posted", ChatMessagePosted(
            platform="telegram", group_id=GROUP, delivery_id=f"{cid}-{p}", message_id=f"m-{p}", sender_id=p,
            text="抽我", sent_at=now), cid) for p in chat_people]
        responses, _ = await asyncio.gather(
            asyncio.gather(*(client.post(entries_url, headers=tokens[p], json={"person_id": p})
                             for p in api_people * 2)),
            send(stack, chat),
        )

        failed = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
        assert failed == [], failed
        assert sorted(r.status_code for r in responses) == [200] * 30 + [201] * 30, \
            [(r.status_code, r.text) for r in responses if r.status_code not in (200, 201)]
        assert sorted(r.json()["person_id"] for r in responses if r.status_code == 201) == sorted(api_people)

        async def entrants() -> list[str]:
            answer = await client.get(f"{gateway}/communities/{cid}/lotteries/{lid}/entrants",
                                      headers=tokens[OWNER])
            assert answer.status_code == 200, answer.text
            return answer.json()["entrants"]

        everyone = sorted(api_people + chat_people)
        assert await eventually(entrants, until=lambda e: len(e) >= len(everyone), what="forty entrants") == everyone
        lottery = (await client.get(f"{gateway}/communities/{cid}/lotteries/{lid}", headers=tokens[OWNER])).json()
        assert lottery["entry_count"] == len(everyone)

    rows = await query(stack.postgres.url("engagement"),
                       "SELECT person_id, count(*) AS n FROM lottery_entry WHERE lottery_id = $1 GROUP BY person_id",
                       lid)
    assert {r["person_id"]: r["n"] for r in rows} == dict.fromkeys(everyone, 1)
    with engagement_log.open("rb") as log:
        log.seek(log_start)
        assert b"deadlock detected" not in log.read(), "entries took their locks in different orders"
