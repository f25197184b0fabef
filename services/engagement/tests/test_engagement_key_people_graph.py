"""The key-people answer carries a picture of the graph (the console draws it): people with their cluster,
PageRank and betweenness, and the interactions between them; capped, leaders and connectors always in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engagement.jobs.keypeople import analyse, build_graph
from qunzhu_common.events.contracts.chat import ChatReactionAdded

T0 = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
G = "telegram:-100"


def two_clusters_and_a_bridge() -> list[tuple[str, str, str]]:
    edges = []
    left, right = [f"l{i}" for i in range(6)], [f"r{i}" for i in range(6)]
    for cluster in (left, right):
        edges += [(a, b, "reply") for a in cluster for b in cluster if a != b]
    edges += [(p, "l0", kind) for p in left[1:] for kind in ("mention", "reply")]
    return edges + [("l5", "bridge", "reply"), ("bridge", "r5", "reply"), ("r5", "bridge", "reply")]


def test_the_picture_has_clusters_scores_and_the_heaviest_edges():
    result = analyse(build_graph(two_clusters_and_a_bridge()), top_k=3)
    picture = result["graph"]
    nodes = {n["id"]: n for n in picture["nodes"]}
    assert len(nodes) == 13 and picture["truncated"] is False
    assert nodes["l1"]["cluster"] == nodes["l2"]["cluster"] != nodes["r1"]["cluster"]
    assert max(nodes.values(), key=lambda n: n["pagerank"])["id"] == "l0"
    assert max(nodes.values(), key=lambda n: n["betweenness"])["id"] == "bridge"
    assert picture["edges"][0] == {"source": "l1", "target": "l0", "weight": 3}  # two replies and a mention
    assert {(e["source"], e["target"]) for e in picture["edges"]} >= {("l5", "bridge"), ("bridge", "r5")}


def test_a_large_graph_is_cut_to_its_central_people_keeping_every_leader_and_connector():
    graph = build_graph(two_clusters_and_a_bridge())
    result = analyse(graph, top_k=3)
    from engagement.jobs.keypeople import picture

    rank = {n: 1.0 / (i + 1) for i, n in enumerate(sorted(graph.nodes))}
    cut = picture(graph, rank=rank, between={}, cluster_of=dict.fromkeys(graph.nodes, 0), keep={"bridge"},
                  max_nodes=4, max_edges=3)
    ids = [n["id"] for n in cut["nodes"]]
    assert len(ids) == 4 and "bridge" in ids and cut["truncated"] is True and len(cut["edges"]) <= 3
    assert all(e["source"] in ids and e["target"] in ids for e in cut["edges"])
    assert {p.person_id for p in result["opinion_leaders"] + result["connectors"]} <= {
        n["id"] for n in result["graph"]["nodes"]}
    assert analyse(build_graph([]), top_k=3)["graph"] == {"nodes": [], "edges": [], "truncated": False}


async def test_the_key_people_route_answers_with_the_picture(engagement):
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
    response = await engagement.client.post(f"/communities/{cid}/jobs/key_people",
                                            params={"as_of": (T0 + timedelta(days=1)).isoformat()})
    assert response.status_code == 200, response.text

    stored = await engagement.get(f"/communities/{cid}/key-people")
    nodes = {n["id"]: n for n in stored["graph"]["nodes"]}
    assert set(nodes) == set(people) and max(nodes.values(), key=lambda n: n["pagerank"])["id"] == star
    assert {(e["source"], e["target"]) for e in stored["graph"]["edges"]} == {(p, star) for p in people[1:]}
    assert all(e["weight"] == 3 for e in stored["graph"]["edges"])  # reply, mention, reaction


async def test_group_health_as_of_an_earlier_day_counts_only_what_happened_by_then(engagement):
    """The console draws each group's 14-day trend from health as of each day: a later message must not
    count in an earlier day's 7-day window."""
    from qunzhu_common.events.contracts.chat import ChatMemberJoined

    cid = await engagement.community()
    people = ["telegram:1", "telegram:2"]
    for person in people:
        await engagement.member(cid, person, joined_at=T0)
        await engagement.feed("chat.member.joined", ChatMemberJoined(
            platform="telegram", group_id=G, delivery_id=f"j{person}", member_id=person, joined_at=T0,
        ), community_id=cid, at=T0)
    for day in range(10):  # one message a day for ten days
        await engagement.message(cid, people[day % 2], f"第{day}天的增长实验记录", T0 + timedelta(days=day, hours=1))

    async def messages(as_of):
        [report] = await engagement.get(f"/communities/{cid}/groups/health", as_of=as_of.isoformat())
        return report["messages_7d"], report["first_activity_at"]

    assert (await messages(T0 + timedelta(days=9, hours=2)))[0] == 7  # days 3–9
    count, first = await messages(T0 + timedelta(days=2, hours=2))
    assert count == 3  # days 0–2, not the week that followed
    assert first.startswith("2026-09-01")
