"""Part 4: sign-up chains (接龙) — parsed from chat, capacity, waitlist, cancel, no lost or doubled line."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from engagement.activities.chains import parse_chain
from qunzhu_common.events.contracts.chat import ChatCommandIssued

GROUP = "telegram:-100"
NAMES = {"telegram:1": "张三", "telegram:2": "李四", "telegram:3": "王五", "telegram:4": "赵六", "telegram:5": "钱七"}
_ids = itertools.count(1)


async def setup(engagement, people=tuple(NAMES)) -> str:
    cid = await engagement.community()
    for person in people:
        await engagement.member(cid, person, name=NAMES.get(person, ""))
    await engagement.client.post(f"/communities/{cid}/rules", json={
        "rules": {"points": {"signup_chain": 2}}, "effective_from": "2020-01-01T00:00:00Z"})
    return cid


async def chain_message(engagement, cid: str, person: str, argument: str, at: datetime | None = None) -> None:
    n = next(_ids)
    await engagement.feed("chat.command.issued", ChatCommandIssued(
        platform="telegram", group_id=GROUP, delivery_id=f"chain{n}", message_id=f"cm{n}", sender_id=person,
        sender_name=NAMES.get(person, ""), command="signup_chain", argument=argument, sent_at=at or datetime.now(UTC),
    ), community_id=cid)


def test_the_chain_format_is_parsed():
    parsed = parse_chain("周六线下聚会\n地点：国贸\n限 12 人\n\n1. 张三\n2、李四 +1\n3）王五")
    assert (parsed.title, parsed.capacity) == ("周六线下聚会", 12)
    assert parsed.description == "地点：国贸\n限 12 人"
    assert parsed.lines == [(1, "张三"), (2, "李四 +1"), (3, "王五")]
    assert parsed.own_line("李四") == "李四 +1" and parsed.own_line("") == "王五"
    assert parse_chain("取消").cancel and parse_chain("cancel").cancel
    assert parse_chain("1. 张三").title == "" and parse_chain("1. 张三").lines == [(1, "张三")]
    assert parse_chain("周末爬山").capacity is None


async def test_a_chain_started_and_joined_in_chat_keeps_every_line_and_promotes_from_the_waitlist(engagement):
    cid = await setup(engagement)
    a, b, c, d, e = NAMES
    await chain_message(engagement, cid, a, "周六线下聚会\n限 3 人\n1. 张三")
    await chain_message(engagement, cid, b, "周六线下聚会\n限 3 人\n1. 张三\n2. 李四")
    # c and d both copied the list with two lines: in the chat one line would be lost
    await chain_message(engagement, cid, c, "周六线下聚会\n1. 张三\n2. 李四\n3. 王五")
    await chain_message(engagement, cid, d, "周六线下聚会\n1. 张三\n2. 李四\n3. 赵六")
    await chain_message(engagement, cid, d, "周六线下聚会\n1. 张三\n2. 李四\n3. 赵六")  # twice: one line
    await chain_message(engagement, cid, "telegram:999", "周六线下聚会\n4. 路人")  # not a member: refused
    await chain_message(engagement, cid, e, "1. 张三\n2. 李四\n3. 王五\n4. 赵六\n5. 钱七")  # no title: the open one

    chains = await engagement.get(f"/communities/{cid}/chains")
    assert len(chains) == 1
    chain = chains[0]
    assert (chain["title"], chain["capacity"]) == ("周六线下聚会", 3)
    assert [(x["position"], x["line"]) for x in chain["confirmed"]] == [(1, "张三"), (2, "李四"), (3, "王五")]
    assert [(x["position"], x["person_id"]) for x in chain["waitlist"]] == [(4, d), (5, e)]
    posted = [x.data["text"] for x in await engagement.outbox_events("chat.action.requested")]
    assert posted[-1].splitlines() == ["接龙：周六线下聚会（3/3）", "限 3 人", "1. 张三", "2. 李四", "3. 王五",
                                       "候补：", "4. 赵六", "5. 钱七"]

    await chain_message(engagement, cid, b, "取消")
    chain = await engagement.get(f"/communities/{cid}/chains/{chain['id']}")
    assert [x["person_id"] for x in chain["confirmed"]] == [a, c, d]
    assert [x["person_id"] for x in chain["waitlist"]] == [e]
    promoted = [x.data for x in await engagement.outbox_events("activity.participated")
                if x.data["action"] == "promoted"]
    assert [(p["person_id"], p["position"]) for p in promoted] == [(d, 3)]
    texts = [x.data["text"] for x in await engagement.outbox_events("chat.action.requested")]
    assert any("赵六 从候补转为正式报名" in t for t in texts)
    # the chat message is what earns the 接龙 points (the existing chat scoring), once per message
    assert await engagement.points(cid, a) == 2


async def test_api_signups_cancel_and_rejoin_are_idempotent(engagement):
    cid = await setup(engagement)
    a, b, c, *_ = NAMES
    created = await engagement.client.post(f"/communities/{cid}/chains", json={
        "title": "读书会", "group_id": GROUP, "capacity": 1,
        "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()})
    assert created.status_code == 201, created.text
    url = f"/communities/{cid}/chains/{created.json()['id']}"
    first = await engagement.client.post(f"{url}/signups", json={"person_id": a, "line": "张三 带书"})
    again = await engagement.client.post(f"{url}/signups", json={"person_id": a})
    assert (first.status_code, again.status_code) == (201, 200)
    assert (again.json()["outcome"], again.json()["position"], again.json()["status"]) == ("already", 1, "confirmed")
    waiting = await engagement.client.post(f"{url}/signups", json={"person_id": b})
    assert (waiting.json()["position"], waiting.json()["status"]) == (2, "waitlisted")
    cancelled = await engagement.client.post(f"{url}/cancellations", json={"person_id": a})
    assert cancelled.json()["promoted"] == [b]
    twice = await engagement.client.post(f"{url}/cancellations", json={"person_id": a})
    assert twice.json()["outcome"] == "already_cancelled" and twice.json()["promoted"] == []
    rejoined = await engagement.client.post(f"{url}/signups", json={"person_id": a})
    assert (rejoined.json()["outcome"], rejoined.json()["position"], rejoined.json()["status"]) == \
        ("rejoined", 2, "waitlisted")
    assert (await engagement.client.post(f"{url}/cancellations", json={"person_id": c})).status_code == 404
    # points once per member and chain, promotion included
    assert await engagement.points(cid, a) == 2 and await engagement.points(cid, b) == 2
    closed = await engagement.client.post(f"{url}/close")
    assert closed.json()["status"] == "closed"
    late = await engagement.client.post(f"{url}/signups", json={"person_id": c})
    assert late.status_code == 409 and "closed" in late.json()["detail"]


async def test_concurrent_signups_never_lose_or_duplicate_a_line(engagement):
    people = [f"telegram:{i}" for i in range(100, 140)]
    cid = await setup(engagement, people=people)
    created = await engagement.client.post(f"/communities/{cid}/chains", json={
        "title": "年会", "group_id": GROUP, "capacity": 25})
    url = f"/communities/{cid}/chains/{created.json()['id']}"
    responses = await asyncio.gather(*(engagement.client.post(f"{url}/signups", json={"person_id": p})
                                       for p in people + people[:10]))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses if r.status_code >= 300]
    assert sum(r.status_code == 201 for r in responses) == 40
    chain = await engagement.get(url)
    lines = chain["confirmed"] + chain["waitlist"]
    assert sorted(x["person_id"] for x in lines) == sorted(people)
    assert [x["position"] for x in lines] == list(range(1, 41))
    assert (len(chain["confirmed"]), len(chain["waitlist"])) == (25, 15)
    # what each member was told is what the list says
    told = {r.json()["person_id"]: r.json()["position"] for r in responses if r.status_code == 201}
    assert told == {x["person_id"]: x["position"] for x in lines}
