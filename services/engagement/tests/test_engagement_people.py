"""Parts 7–11: lurkers, elimination, rule strikes, key people, group health, AB promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engagement.jobs.keypeople import analyse, build_graph
from qunzhu_common.events.contracts.chat import ChatMemberJoined, ChatReactionAdded, ChatRedPacketSent

T0 = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
G = "telegram:-100"


async def run(engagement, cid: str, job: str, as_of: datetime):
    response = await engagement.client.post(f"/communities/{cid}/jobs/{job}", params={"as_of": as_of.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def join_group(engagement, cid: str, person: str, at: datetime, group: str = G) -> None:
    await engagement.feed("chat.member.joined", ChatMemberJoined(
        platform="telegram", group_id=group, delivery_id=f"j{person}{group}", member_id=person, joined_at=at,
    ), community_id=cid, at=at)


async def test_lurkers_are_flagged_once_per_silence_and_nudged(engagement):
    cid = await engagement.community()
    talker, lurker, admin = "telegram:1", "telegram:2", "telegram:3"
    for person in (talker, lurker):
        await engagement.member(cid, person, joined_at=T0 - timedelta(days=30), name=person[-1])
        await join_group(engagement, cid, person, T0 - timedelta(days=30))
    await engagement.member(cid, admin, role="admin", joined_at=T0 - timedelta(days=30))
    await engagement.message(cid, talker, "本周的增长实验我来汇报一下", T0)
    await engagement.message(cid, lurker, "早安", T0)  # noise is not effective activity

    assert await run(engagement, cid, "lurkers", T0 + timedelta(days=1)) == [lurker]
    assert await run(engagement, cid, "lurkers", T0 + timedelta(days=2)) == []  # same silence: once
    [flag] = await engagement.outbox_events("lurker.flagged")
    assert (flag.data["person_id"], flag.data["threshold_days"], flag.data["silent_days"]) == (lurker, 14, 31)
    [nudge] = [e for e in await engagement.outbox_events("chat.action.requested") if "好久" in e.data["text"]]
    assert (nudge.data["member_id"], nudge.data["group_id"]) == (lurker, G)

    await engagement.message(cid, lurker, "最近在忙一个新项目的冷启动", T0 + timedelta(days=3))
    assert await run(engagement, cid, "lurkers", T0 + timedelta(days=4)) == []
    assert await run(engagement, cid, "lurkers", T0 + timedelta(days=20)) == [talker, lurker]


async def test_elimination_recommends_the_bottom_n_with_evidence(engagement):
    cid = await engagement.community()
    await engagement.client.post(f"/communities/{cid}/rules", json={
        "effective_from": (T0 - timedelta(days=200)).isoformat(), "rules": {"elimination_bottom_n": 2}})
    old = [f"telegram:{n}" for n in range(1, 6)]
    for n, person in enumerate(old, start=1):
        await engagement.member(cid, person, joined_at=T0 - timedelta(days=100))
        for day in range(n - 1):  # telegram:1 has 0 points, telegram:2 has 5, …
            await engagement.command(cid, person, "checkin", T0 - timedelta(days=day))
    await engagement.member(cid, "telegram:new", joined_at=T0 - timedelta(days=10))  # younger than the window
    await engagement.member(cid, "telegram:admin", role="admin", joined_at=T0 - timedelta(days=100))

    assert await run(engagement, cid, "elimination", T0 + timedelta(hours=1)) == ["telegram:1", "telegram:2"]
    assert await run(engagement, cid, "elimination", T0 + timedelta(days=2)) == []  # same window: once
    events = await engagement.outbox_events("removal.recommended")
    assert [(e.data["member_id"], e.data["reason"], e.data["evidence"]["points_in_window"],
             e.data["evidence"]["rank_from_bottom"]) for e in events] == [
        ("telegram:1", "elimination", 0, 1), ("telegram:2", "elimination", 5, 2)]
    listed = await engagement.get(f"/communities/{cid}/removal-recommendations")
    assert {r["person_id"] for r in listed} == {"telegram:1", "telegram:2"}


async def test_three_strikes_warn_then_recommend_removal(engagement):
    cid = await engagement.community()
    spammer = "telegram:9"
    await engagement.member(cid, spammer)
    await engagement.message(cid, spammer, "https://shop.example.com", T0, links=["https://shop.example.com"])
    await engagement.message(cid, spammer, "加微信领取资料", T0 + timedelta(minutes=1))
    assert not await engagement.outbox_events("removal.recommended")
    warnings = [e for e in await engagement.outbox_events("chat.action.requested") if "提醒" in e.data["text"]]
    # The warning mentions the member (the gateway renders the name), then says which strike it is.
    assert [w.data["text"][:len("{mention:telegram:9} ") + 6] for w in warnings] == [
        "{mention:telegram:9} 提醒（1/3", "{mention:telegram:9} 提醒（2/3"]

    await engagement.message(cid, spammer, "http://x.example", T0 + timedelta(minutes=2), links=["http://x.example"])
    [event] = await engagement.outbox_events("removal.recommended")
    assert (event.data["member_id"], event.data["reason"], event.data["evidence"]["strikes"]) == (
        spammer, "rule_violation", 3)


def test_pagerank_finds_the_opinion_leader_and_betweenness_the_bridge():
    edges = []
    left, right = [f"l{i}" for i in range(6)], [f"r{i}" for i in range(6)]
    for cluster in (left, right):  # two tight clusters
        for a in cluster:
            for b in cluster:
                if a != b:
                    edges.append((a, b, "reply"))
    for person in left[1:]:
        edges += [(person, "l0", "mention"), (person, "l0", "reply")]  # the left cluster turns to l0
    edges += [("l5", "bridge", "reply"), ("bridge", "r5", "reply"), ("r5", "bridge", "reply")]
    graph = build_graph(edges)
    edges_without_bridge = [e for e in edges if "bridge" not in e[:2]]
    result = analyse(graph, top_k=3)

    assert result["opinion_leaders"][0].person_id == "l0"
    assert "15 replies/mentions/reactions from 5 people" in result["opinion_leaders"][0].reason
    assert result["connectors"][0].person_id == "bridge"
    assert "links 2 clusters" in result["connectors"][0].reason
    assert result["clusters"] >= 2
    assert "bridge" not in [p.person_id for p in analyse(build_graph(edges_without_bridge), top_k=3)["connectors"]]


async def test_key_people_from_replies_mentions_and_reactions_are_stored_and_emitted(engagement):
    cid = await engagement.community()
    people = [f"telegram:{n}" for n in range(1, 6)]
    for person in people:
        await engagement.member(cid, person)
    star = people[0]
    for i, person in enumerate(people[1:]):
        await engagement.message(cid, person, f"请教一下冷启动的第{i}个问题", T0 + timedelta(minutes=i),
                                 reply_to_message_id="m-star", reply_to_sender_id=star, mentions=[star])
        await engagement.feed("chat.reaction.added", ChatReactionAdded(
            platform="telegram", group_id=G, delivery_id=f"r{i}", message_id="m-star", reactor_id=person,
            target_sender_id=star, emoji="👍", reacted_at=T0,
        ), community_id=cid, at=T0)

    result = await run(engagement, cid, "key_people", T0 + timedelta(days=1))
    assert result["opinion_leaders"][0]["person_id"] == star
    stored = await engagement.get(f"/communities/{cid}/key-people")
    assert stored["opinion_leaders"][0]["person_id"] == star and stored["nodes"] == 5
    [event] = await engagement.outbox_events("key_people.updated")
    assert event.data["opinion_leaders"][0]["person_id"] == star


async def test_group_health_flags_a_group_decaying_from_its_first_month(engagement):
    cid = await engagement.community()
    people = [f"telegram:{n}" for n in range(1, 11)]
    for person in people:
        await engagement.member(cid, person, joined_at=T0)
        await join_group(engagement, cid, person, T0)
    for day in range(30):  # a lively first month: 8 of 10 speak every day
        for i, person in enumerate(people[:8]):
            await engagement.message(cid, person, f"第{day}天的实验记录{i}", T0 + timedelta(days=day, minutes=i))
    now = T0 + timedelta(days=60)
    await engagement.feed("chat.red_packet.sent", ChatRedPacketSent(
        platform="telegram", group_id=G, delivery_id="rp", sender_id=people[0], amount_fen=20000, count=10,
        sent_at=now - timedelta(days=2)), community_id=cid, at=now - timedelta(days=2))
    await engagement.message(cid, people[0], "还有人在吗？最近大家都在忙什么", now - timedelta(days=1))
    await engagement.message(cid, people[1], "1", now - timedelta(days=1))

    [report] = await engagement.get(f"/communities/{cid}/groups/health", as_of=now.isoformat())
    assert report["group_id"] == G and report["members"] == 10
    assert report["baseline_active_ratio"] == 0.8
    assert report["daily_active_ratio_7d"] < 0.3 * 0.8 and report["dead_group_risk"] is True
    assert (report["active"], report["reply_one"], report["silent"], report["red_packets_7d"]) == (1, 1, 8, 1)
    assert report["warning"] == "red packets followed by silence"

    assert await run(engagement, cid, "group_health", now) == [G]
    assert await run(engagement, cid, "group_health", now + timedelta(days=1)) == []  # once a week
    [event] = await engagement.outbox_events("group.dead_flagged")
    assert event.data["group_id"] == G


async def test_ab_candidates_are_the_most_engaged_members_not_yet_in_the_core_group(engagement):
    cid = await engagement.community()
    a, b, c = "telegram:1", "telegram:2", "telegram:3"
    for person in (a, b, c):
        await engagement.member(cid, person)
    await join_group(engagement, cid, c, T0, group="telegram:-core")
    for i in range(5):
        await engagement.message(cid, a, f"增长实验的第{i}个建议", T0 + timedelta(minutes=i))
        await engagement.message(cid, c, f"核心群成员的第{i}个建议", T0 + timedelta(minutes=i))
    await engagement.message(cid, b, "我觉得第一个建议最好", T0 + timedelta(minutes=9), reply_to_sender_id=a)

    rows = await engagement.get(f"/communities/{cid}/groups/{G}/ab-candidates", core_group_id="telegram:-core",
                                as_of=(T0 + timedelta(days=1)).isoformat())
    assert [r["person_id"] for r in rows] == [a, b]
    assert rows[0]["replies_received_30d"] == 1
