"""Part 1: lotteries — entry by keyword or API, eligibility, a verifiable draw that never re-runs."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from engagement.activities.lottery import draw_winners, ticket

A, B, C, D = "telegram:1", "telegram:2", "telegram:3", "telegram:4"
GROUP = "telegram:-100"


def recompute(seed: str, entrants: list[str], n: int) -> list[str]:
    """A third party's implementation of the documented procedure (no engagement code)."""
    tickets = {p: hashlib.sha256(f"{seed}\n{p}".encode()).hexdigest() for p in set(entrants)}
    return sorted(tickets, key=lambda p: (tickets[p], p))[:n]


async def setup(engagement, people=(A, B, C, D), points: int = 2) -> str:
    cid = await engagement.community()
    for person in people:
        await engagement.member(cid, person)
    response = await engagement.client.post(f"/communities/{cid}/rules", json={
        "rules": {"points": {"lottery_entry": points}}, "effective_from": "2020-01-01T00:00:00Z"})
    assert response.status_code == 201, response.text
    return cid


async def open_lottery(engagement, cid: str, **fields) -> dict:
    now = datetime.now(UTC)
    body = {"title": "周五福利夜", "prize": "一本书", "group_id": GROUP, "winners_count": 2,
            "closes_at": (now + timedelta(hours=1)).isoformat(), **fields}
    response = await engagement.client.post(f"/communities/{cid}/lotteries", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def close_now(engagement, lottery_id: str) -> None:
    from sqlalchemy import update

    from engagement.models import Lottery

    async with engagement.runtime.session_maker() as session, session.begin():
        await session.execute(update(Lottery).where(Lottery.id == lottery_id)
                              .values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_the_draw_is_a_function_of_the_seed_and_the_set_of_entrants():
    seed = "ab" * 32
    people = [f"telegram:{i}" for i in range(50)]
    winners = draw_winners(seed, people, 5)
    assert winners == draw_winners(seed, list(reversed(people)) + people[:3], 5)  # order and repeats do not matter
    assert winners == recompute(seed, people, 5)
    assert len(set(winners)) == 5
    assert draw_winners("cd" * 32, people, 5) != winners
    assert ticket(seed, A) == hashlib.sha256(f"{seed}\n{A}".encode()).hexdigest()
    assert draw_winners(seed, people[:2], 5) == recompute(seed, people[:2], 5)  # fewer entrants than winners


async def test_lottery_entered_by_keyword_and_api_drawn_once_and_verifiable(engagement):
    cid = await setup(engagement)
    lottery = await open_lottery(engagement, cid)
    lid, commitment = lottery["id"], lottery["seed_commitment"]
    assert lottery["seed"] is None and len(commitment) == 64
    opened = await engagement.outbox_events("lottery.opened")
    assert opened[0].data["seed_commitment"] == commitment
    announcements = [e.data for e in await engagement.outbox_events("chat.action.requested")]
    assert commitment in announcements[0]["text"] and announcements[0]["group_id"] == GROUP

    now = datetime.now(UTC)
    await engagement.message(cid, A, "抽奖", now)
    await engagement.message(cid, A, "抽奖", now + timedelta(seconds=1))  # a duplicate entry: no effect
    await engagement.message(cid, B, " 抽奖 ", now)
    await engagement.message(cid, D, "我想抽奖", now)  # not the keyword
    first = await engagement.client.post(f"/communities/{cid}/lotteries/{lid}/entries", json={"person_id": C})
    again = await engagement.client.post(f"/communities/{cid}/lotteries/{lid}/entries", json={"person_id": C})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["entered_at"] == first.json()["entered_at"] and again.json()["new"] is False

    entrants = await engagement.get(f"/communities/{cid}/lotteries/{lid}/entrants")
    assert entrants["entrants"] == [A, B, C]
    assert (await engagement.get(f"/communities/{cid}/lotteries/{lid}"))["entry_count"] == 3
    early = await engagement.client.post(f"/communities/{cid}/lotteries/{lid}/draw")
    assert early.status_code == 409 and "entries close at" in early.json()["detail"]

    await close_now(engagement, lid)
    late = await engagement.client.post(f"/communities/{cid}/lotteries/{lid}/entries", json={"person_id": D})
    assert late.status_code == 409
    assert late.headers["content-type"] == "application/problem+json" and "closed at" in late.json()["detail"]

    drawn = await engagement.client.post(f"/communities/{cid}/lotteries/{lid}/draw")
    assert drawn.status_code == 200, drawn.text
    result = drawn.json()
    seed = result["seed"]
    assert hashlib.sha256(seed.encode()).hexdigest() == commitment  # the revealed seed is the committed one
    assert result["winners"] == recompute(seed, entrants["entrants"], 2)
    again = await engagement.client.post(f"/communities/{cid}/lotteries/{lid}/draw")
    assert again.status_code == 409 and "never re-run" in again.json()["detail"]
    assert (await engagement.get(f"/communities/{cid}/lotteries/{lid}"))["winners"] == result["winners"]

    events = await engagement.outbox_events("lottery.drawn")
    assert len(events) == 1 and events[0].data["winners"] == result["winners"]
    assert events[0].data["entrants_sha256"] == entrants["entrants_sha256"]
    texts = [e.data["text"] for e in await engagement.outbox_events("chat.action.requested")]
    assert any(seed in t and all(w in t for w in result["winners"]) for t in texts)
    # each entrant got the participation points once, under a named rule
    for person in (A, B, C):
        assert await engagement.points(cid, person) == 2
    ledger = await engagement.get(f"/communities/{cid}/members/{A}/points")
    assert [e["rule"] for e in ledger["entries"]] == ["lottery_entry@v1"]


async def test_eligibility_is_checked_with_the_reason(engagement):
    cid = await setup(engagement, people=(A, B))
    await engagement.member(cid, C, status="expired")
    lottery = await open_lottery(engagement, cid, min_level=2)
    url = f"/communities/{cid}/lotteries/{lottery['id']}/entries"
    low = await engagement.client.post(url, json={"person_id": A})
    assert low.status_code == 422 and "below the lottery's minimum level 2" in low.json()["detail"]
    expired = await engagement.client.post(url, json={"person_id": C})
    assert expired.status_code == 422 and "not an active member" in expired.json()["detail"]
    stranger = await engagement.client.post(url, json={"person_id": "telegram:999"})
    assert stranger.status_code == 422

    checkin = await open_lottery(engagement, cid, require_checkin_today=True, keyword="打卡抽奖")
    url = f"/communities/{cid}/lotteries/{checkin['id']}/entries"
    refused = await engagement.client.post(url, json={"person_id": B})
    assert refused.status_code == 422 and "checked in" in refused.json()["detail"]
    await engagement.command(cid, B, "checkin", datetime.now(UTC))
    assert (await engagement.client.post(url, json={"person_id": B})).status_code == 201
    # refused chat entries change nothing and do not fail the event
    await engagement.message(cid, A, "打卡抽奖", datetime.now(UTC))
    assert (await engagement.get(f"/communities/{cid}/lotteries/{checkin['id']}/entrants"))["entrants"] == [B]


async def test_bad_lottery_input_is_a_problem(engagement):
    cid = await setup(engagement, people=(A,))
    now = datetime.now(UTC)
    backwards = await engagement.client.post(f"/communities/{cid}/lotteries", json={
        "title": "x", "opens_at": now.isoformat(), "closes_at": (now - timedelta(hours=1)).isoformat()})
    assert backwards.status_code == 422 and "must be after" in backwards.json()["detail"]
    naive = await engagement.client.post(f"/communities/{cid}/lotteries", json={
        "title": "x", "closes_at": "2030-01-01T00:00:00"})
    assert naive.status_code == 422
    unknown = await engagement.client.post(f"/communities/{cid}/lotteries/nope/draw")
    assert unknown.status_code == 404


async def test_concurrent_entries_and_draws_count_each_member_once(engagement):
    people = [f"telegram:{i}" for i in range(10, 30)]
    cid = await setup(engagement, people=people)
    lottery = await open_lottery(engagement, cid, winners_count=3)
    url = f"/communities/{cid}/lotteries/{lottery['id']}/entries"
    responses = await asyncio.gather(*(engagement.client.post(url, json={"person_id": p})
                                       for p in people + people))
    assert sorted(r.status_code for r in responses) == [200] * 20 + [201] * 20
    assert (await engagement.get(f"/communities/{cid}/lotteries/{lottery['id']}"))["entry_count"] == 20
    await close_now(engagement, lottery["id"])
    draws = await asyncio.gather(*(engagement.client.post(f"/communities/{cid}/lotteries/{lottery['id']}/draw")
                                   for _ in range(4)))
    assert sorted(r.status_code for r in draws) == [200, 409, 409, 409]
    assert len(await engagement.outbox_events("lottery.drawn")) == 1


async def test_a_refused_chat_entry_in_a_consumed_batch_loses_none_of_the_batchs_earlier_messages(engagement):
    """#19: checking the entry scores the batch's earlier messages first (the entrant's level counts them);
    that happens before the entry's savepoint, so refusing the entry rolls back the entry alone."""
    from qunzhu_common.bus.base import Record
    from qunzhu_common.events.contracts.chat import ChatMessagePosted
    from qunzhu_common.events.envelope import new_envelope

    cid = await setup(engagement, people=(A, B))
    lottery = await open_lottery(engagement, cid, min_level=5, keyword="抽奖")
    now = datetime.now(UTC)
    texts = [(B, "今天复盘了留存曲线：第三天掉得最厉害，准备加新手任务"), (A, "抽奖"),
             (B, "补充一下：邀请码裂变要配合新手任务才有效果")]
    envelopes = [new_envelope(type="chat.message.posted", source="test", community_id=cid, data=ChatMessagePosted(
        platform="telegram", group_id=GROUP, delivery_id=f"d{i}", message_id=f"m{i}", sender_id=person, text=text,
        sent_at=now + timedelta(minutes=i))) for i, (person, text) in enumerate(texts)]
    await engagement.runtime.consumer.handle_batch([
        Record(topic="chat.events.v1", partition=0, offset=i, key=cid, value=e.to_bytes())
        for i, e in enumerate(envelopes)])
    assert (await engagement.get(f"/communities/{cid}/lotteries/{lottery['id']}/entrants"))["entrants"] == []
    assert await engagement.points(cid, B) == 2  # both of B's messages, one point each
    assert await engagement.points(cid, A) == 0  # 抽奖 is noise, and the entry was refused
