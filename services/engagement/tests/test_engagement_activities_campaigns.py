"""Part 5: red-packet and goal campaigns — triggers, reward records in fen, payout marked by the operator."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from engagement.activities.campaigns import normalise_answer, yuan
from qunzhu_common.events.contracts.chat import ChatMemberJoined

GROUP = "telegram:-100"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


async def setup(engagement, people) -> str:
    cid = await engagement.community()
    for person in people:
        await engagement.member(cid, person)
    return cid


async def join(engagement, cid: str, person: str, at: datetime) -> None:
    n = next(_ids)
    await engagement.feed("chat.member.joined", ChatMemberJoined(
        platform="telegram", group_id=GROUP, delivery_id=f"j{n}", member_id=person, joined_at=at,
    ), community_id=cid, at=at)


async def campaign(engagement, cid: str, **body) -> dict:
    response = await engagement.client.post(f"/communities/{cid}/campaigns", json={
        "title": "拉新冲刺", "group_id": GROUP, "starts_at": "2020-01-01T00:00:00Z", **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_answers_and_money_are_normalised():
    assert normalise_answer("  B。") == normalise_answer("b") == "b"
    assert normalise_answer("增长 黑客！") == "增长黑客"
    assert (yuan(50000), yuan(1234), yuan(5)) == ("¥500", "¥12.34", "¥0.05")


async def test_group_size_campaign_records_one_reward_for_the_operator_to_pay(engagement):
    cid = await setup(engagement, [])
    now = datetime.now(UTC)
    c = await campaign(engagement, cid, trigger="group_size", threshold=3, reward_fen=50000,
                       reward_text="¥500 红包")
    for i in range(2):
        await join(engagement, cid, f"telegram:{i}", now)
    assert (await engagement.get(f"/communities/{cid}/campaigns/{c['id']}"))["progress"] == 2
    assert await engagement.get(f"/communities/{cid}/campaigns/{c['id']}/rewards") == []
    for i in range(2, 5):
        await join(engagement, cid, f"telegram:{i}", now)
    rewards = await engagement.get(f"/communities/{cid}/campaigns/{c['id']}/rewards")
    assert [(r["recipient_id"], r["recipient_kind"], r["amount_fen"], r["status"]) for r in rewards] == \
        [(GROUP, "group", 50000, "pending")]
    events = await engagement.outbox_events("campaign.reward_recorded")
    assert [(e.data["amount_fen"], e.data["recipient_kind"]) for e in events] == [(50000, "group")]
    texts = [e.data["text"] for e in await engagement.outbox_events("chat.action.requested")]
    assert any("群人数达到 3" in t and "¥500 红包" in t for t in texts)

    url = f"/communities/{cid}/campaigns/{c['id']}/rewards/{rewards[0]['id']}/paid"
    paid = await engagement.client.post(url, json={"paid_by": "telegram:owner", "payout_ref": "wx-redpacket-1"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    again = await engagement.client.post(url, json={"paid_by": "telegram:someone-else"})
    assert again.json()["paid_by"] == "telegram:owner" and again.json()["paid_at"] == paid.json()["paid_at"]


async def test_checkin_streak_campaign_rewards_each_member_once_up_to_the_limit(engagement):
    a, b, c = "telegram:1", "telegram:2", "telegram:3"
    cid = await setup(engagement, [a, b, c])
    camp = await campaign(engagement, cid, trigger="checkin_streak", threshold=3, reward_fen=888, max_rewards=2)
    start = datetime(2026, 11, 2, 7, 0, tzinfo=SHANGHAI)
    for person, days in ((a, [0, 1, 2, 3]), (b, [0, 2, 3]), (c, [1, 2, 3])):
        for day in days:
            await engagement.command(cid, person, "checkin", start + timedelta(days=day))
    rewards = await engagement.get(f"/communities/{cid}/campaigns/{camp['id']}/rewards")
    assert [(r["recipient_id"], r["amount_fen"]) for r in rewards] == [(a, 888), (c, 888)]
    assert (await engagement.get(f"/communities/{cid}/campaigns/{camp['id']}"))["rewards_count"] == 2


async def test_first_answer_wins_and_late_or_wrong_answers_do_not(engagement):
    a, b, c = "telegram:1", "telegram:2", "telegram:3"
    cid = await setup(engagement, [a, b, c])
    camp = await campaign(engagement, cid, trigger="first_answer", answer="增长黑客", reward_fen=2000,
                          title="抢答：本周书名")
    now = datetime.now(UTC)
    await engagement.message(cid, c, "增长大师", now)
    await engagement.message(cid, a, "增长 黑客！", now)
    await engagement.message(cid, b, "增长黑客", now)
    await engagement.message(cid, a, "增长黑客", now)
    rewards = await engagement.get(f"/communities/{cid}/campaigns/{camp['id']}/rewards")
    assert [r["recipient_id"] for r in rewards] == [a]


async def test_bad_campaigns_are_refused_with_the_reason(engagement):
    cid = await setup(engagement, [])
    for body, reason in (({"trigger": "group_size", "threshold": 1, "reward_fen": 100}, "threshold ≥ 2"),
                         ({"trigger": "first_answer", "reward_fen": 100}, "needs the answer"),
                         ({"trigger": "checkin_streak", "threshold": 3, "reward_fen": 1.5}, "reward_fen"),
                         ({"trigger": "checkin_streak", "threshold": 3, "reward_fen": -1}, "reward_fen")):
        response = await engagement.client.post(f"/communities/{cid}/campaigns", json={"title": "x", **body})
        assert response.status_code == 422 and reason in response.text, response.text
