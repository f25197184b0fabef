"""Part 2: polls — single/multiple choice, anonymous or named, one vote per member, deadline, results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from engagement.activities.polls import parse_vote
from engagement.models import Poll

A, B, C, D = "telegram:1", "telegram:2", "telegram:3", "telegram:4"
GROUP = "telegram:-100"


async def setup(engagement, people=(A, B, C, D)) -> str:
    cid = await engagement.community()
    for person in people:
        await engagement.member(cid, person)
    response = await engagement.client.post(f"/communities/{cid}/rules", json={
        "rules": {"points": {"poll_vote": 1}}, "effective_from": "2020-01-01T00:00:00Z"})
    assert response.status_code == 201, response.text
    return cid


async def new_poll(engagement, cid: str, **fields) -> dict:
    body = {"question": "下次分享会选哪个主题？", "options": ["增长", "定价", "社群"], "group_id": GROUP,
            "closes_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(), **fields}
    response = await engagement.client.post(f"/communities/{cid}/polls", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def expire(engagement, poll_id: str) -> None:
    async with engagement.runtime.session_maker() as session, session.begin():
        await session.execute(update(Poll).where(Poll.id == poll_id)
                              .values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_chat_votes_are_parsed():
    assert parse_vote("投票 2") == [2]
    assert parse_vote("#投票：1，3") == [1, 3]
    assert parse_vote("投票 1 3") == [1, 3]
    assert parse_vote("投票吧大家") is None
    assert parse_vote("我投票 2") is None


async def test_single_choice_named_poll_by_chat_and_api_with_live_counts_and_results(engagement):
    cid = await setup(engagement)
    poll = await new_poll(engagement, cid)
    pid = poll["id"]
    announced = [e.data["text"] for e in await engagement.outbox_events("chat.action.requested")]
    assert "1. 增长" in announced[0] and "投票 1" in announced[0]

    now = datetime.now(UTC)
    await engagement.message(cid, A, "投票 2", now)
    await engagement.message(cid, A, "投票 2", now)  # the same vote again: no effect
    await engagement.message(cid, A, "投票 3", now)  # not changeable: refused, the event still succeeds
    await engagement.message(cid, B, "投票 1,2", now)  # single choice: refused
    url = f"/communities/{cid}/polls/{pid}/votes"
    first = await engagement.client.post(url, json={"person_id": C, "choices": [2]})
    same = await engagement.client.post(url, json={"person_id": C, "choices": [2]})
    other = await engagement.client.post(url, json={"person_id": C, "choices": [1]})
    assert (first.status_code, same.status_code, same.json()["outcome"]) == (201, 200, "unchanged")
    assert other.status_code == 409 and "cannot be changed" in other.json()["detail"]
    bad = await engagement.client.post(url, json={"person_id": D, "choices": [4]})
    assert bad.status_code == 422 and "numbered 1–3" in bad.json()["detail"]
    stranger = await engagement.client.post(url, json={"person_id": "telegram:999", "choices": [1]})
    assert stranger.status_code == 422

    live = await engagement.get(f"/communities/{cid}/polls/{pid}/results")
    assert live["open"] is True and live["voters"] == 2
    assert [(c["votes"], c["voters"]) for c in live["counts"]] == [(0, []), (2, [A, C]), (0, [])]

    await expire(engagement, pid)
    late = await engagement.client.post(url, json={"person_id": D, "choices": [1]})
    assert late.status_code == 409 and "closed at" in late.json()["detail"]
    closed = await engagement.client.post(f"/communities/{cid}/polls/{pid}/close")
    assert closed.status_code == 200 and closed.json()["open"] is False
    await engagement.client.post(f"/communities/{cid}/polls/{pid}/close")  # again: announced once
    events = await engagement.outbox_events("poll.closed")
    assert len(events) == 1 and events[0].data["counts"] == [0, 2, 0] and events[0].data["voters"] == 2
    texts = [e.data["text"] for e in await engagement.outbox_events("chat.action.requested")]
    assert sum("投票结果" in t for t in texts) == 1
    assert await engagement.points(cid, A) == 1 and await engagement.points(cid, C) == 1
    b = await engagement.get(f"/communities/{cid}/members/{B}/points")  # the refused vote earned nothing
    assert not any(e["rule_type"] == "poll_vote" for e in b["entries"])
    assert await engagement.points(cid, D) == 0


async def test_multiple_choice_anonymous_changeable_poll(engagement):
    cid = await setup(engagement)
    poll = await new_poll(engagement, cid, multiple=True, max_choices=2, anonymous=True, changeable=True)
    url = f"/communities/{cid}/polls/{poll['id']}/votes"
    assert (await engagement.client.post(url, json={"person_id": A, "choices": [1, 3]})).status_code == 201
    too_many = await engagement.client.post(url, json={"person_id": B, "choices": [1, 2, 3]})
    assert too_many.status_code == 422 and "at most 2" in too_many.json()["detail"]
    twice = await engagement.client.post(url, json={"person_id": B, "choices": [1, 1]})
    assert twice.status_code == 422
    changed = await engagement.client.post(url, json={"person_id": A, "choices": [2]})
    assert changed.status_code == 200 and changed.json()["outcome"] == "changed"
    results = await engagement.get(f"/communities/{cid}/polls/{poll['id']}/results")
    assert [(c["votes"], c["voters"]) for c in results["counts"]] == [(0, None), (1, None), (0, None)]
    assert await engagement.points(cid, A) == 1  # changing a vote earns nothing more
    await expire(engagement, poll["id"])
    late_change = await engagement.client.post(url, json={"person_id": A, "choices": [3]})
    assert late_change.status_code == 409


async def test_concurrent_votes_count_once_and_due_polls_close_by_timer(engagement):
    people = [f"telegram:{i}" for i in range(10, 25)]
    cid = await setup(engagement, people=people)
    poll = await new_poll(engagement, cid)
    url = f"/communities/{cid}/polls/{poll['id']}/votes"
    responses = await asyncio.gather(*(engagement.client.post(url, json={"person_id": p, "choices": [1]})
                                       for p in people * 2))
    assert sorted(r.status_code for r in responses) == [200] * 15 + [201] * 15
    await expire(engagement, poll["id"])

    from engagement.activities.timers import run_due

    await run_due(engagement.app)
    await run_due(engagement.app)
    events = await engagement.outbox_events("poll.closed")
    assert len(events) == 1 and events[0].data["counts"] == [15, 0, 0]
