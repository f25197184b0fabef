"""Part 9 with membership's groups: A (open) and B (core) roles from group.registered / group.updated."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.contracts.chat import ChatMemberJoined, ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, GroupChanged, MemberChanged
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry

T0 = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
OPEN, CORE, OTHER = "telegram:-100", "telegram:-200", "telegram:-300"
PROBLEM = "application/problem+json"


def group(cid: str, group_id: str, role: str, *, at: datetime = T0 - timedelta(days=60), active: bool = True):
    return GroupChanged(community_id=cid, group_id=group_id, platform="telegram", external_id=group_id.split(":")[1],
                        name=f"{role}群", capacity=500, role=role, paid=role == "B", active=active, changed_at=at)


def joined(person: str, group_id: str) -> ChatMemberJoined:
    return ChatMemberJoined(platform="telegram", group_id=group_id, delivery_id=f"j{person}{group_id}",
                            member_id=person, joined_at=T0)


def posted(n: int, person: str, text: str, **fields) -> ChatMessagePosted:
    return ChatMessagePosted(platform="telegram", group_id=OPEN, delivery_id=f"d{n}", message_id=f"m{n}",
                             sender_id=person, text=text, sent_at=T0 + timedelta(minutes=n), **fields)


async def publish(bus, type_: str, data, community_id: str) -> None:
    envelope = new_envelope(type=type_, data=data, source="test", community_id=community_id, occurred_at=T0)
    topic, key = default_registry().route(envelope)
    await bus.publish([OutgoingRecord(topic=topic, key=key, value=envelope.to_bytes())])


async def candidates(engagement, cid: str, source: str = OPEN, **params):
    return await engagement.client.get(f"/communities/{cid}/groups/{source}/ab-candidates",
                                       params={"as_of": (T0 + timedelta(days=1)).isoformat(), **params})


async def test_group_roles_on_the_bus_make_the_b_group_the_default_target(make_engagement, bus, eventually):
    cid = str(uuid.uuid4())
    a, b, c = "telegram:1", "telegram:2", "telegram:3"
    async with make_engagement("live", run_consumers=True) as engagement:
        await publish(bus, "community.created", CommunityCreated(
            community_id=cid, name="增长实验室", positioning="每天一个增长实验", owner_id="telegram:owner",
            created_at=T0 - timedelta(days=90),
        ), cid)
        for person in (a, b, c):
            await publish(bus, "member.activated", MemberChanged(
                community_id=cid, member_id=person, role="member", status="active",
                joined_at=T0 - timedelta(days=80), changed_at=T0 - timedelta(days=80),
            ), cid)
        await publish(bus, "group.registered", group(cid, OPEN, "A"), cid)
        await publish(bus, "group.registered", group(cid, CORE, "B"), cid)
        await publish(bus, "chat.member.joined", joined(c, CORE), cid)
        for i in range(5):
            await publish(bus, "chat.message.posted", posted(2 * i, a, f"增长实验的第{i}个建议"), cid)
            await publish(bus, "chat.message.posted", posted(2 * i + 1, c, f"核心群成员的第{i}个建议"), cid)
        await publish(bus, "chat.message.posted", posted(20, b, "我觉得第一个建议最好", reply_to_sender_id=a), cid)

        async def ranked():
            response = await candidates(engagement, cid)
            return response.status_code == 200 and [r["person_id"] for r in response.json()] == [a, b]

        # c is the most active in A but already in the B group, so is not a candidate.
        await eventually(ranked, what="candidates from A for the registered B group")


async def test_group_updated_moves_a_group_to_b_and_older_updates_are_ignored(engagement):
    cid = await engagement.community()
    a, b = "telegram:1", "telegram:2"
    for person in (a, b):
        await engagement.member(cid, person)
    await engagement.feed("group.registered", group(cid, OPEN, "A"), community_id=cid)
    await engagement.feed("group.registered", group(cid, OTHER, "A"), community_id=cid)
    await engagement.feed("chat.member.joined", joined(b, OTHER), community_id=cid)
    for i in range(3):
        await engagement.message(cid, a, f"增长实验的第{i}个建议", T0 + timedelta(minutes=i), group=OPEN)
        await engagement.message(cid, b, f"另一个增长实验的第{i}个想法", T0 + timedelta(minutes=i), group=OPEN)

    response = await candidates(engagement, cid)
    assert response.status_code == 422  # no B group yet
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("no-core-group")

    await engagement.feed("group.updated", group(cid, OTHER, "B", at=T0 - timedelta(days=1)), community_id=cid)
    # A stale update (older than the last one) must not turn it back into an A group.
    await engagement.feed("group.updated", group(cid, OTHER, "A", at=T0 - timedelta(days=2)), community_id=cid)
    response = await candidates(engagement, cid)
    assert response.status_code == 200, response.text
    assert [r["person_id"] for r in response.json()] == [a]

    # Candidates come only from A groups.
    response = await candidates(engagement, cid, source=OTHER)
    assert response.status_code == 422
    assert response.json()["type"].endswith("not-an-open-group")

    # Deactivated B groups are no target; an explicit core group keeps the former behaviour.
    await engagement.feed("group.updated", group(cid, OTHER, "B", at=T0, active=False), community_id=cid)
    assert (await candidates(engagement, cid)).status_code == 422
    response = await candidates(engagement, cid, core_group_id=CORE)
    assert response.status_code == 200, response.text
    assert {r["person_id"] for r in response.json()} == {a, b}


async def test_an_unregistered_source_group_needs_an_explicit_core_group(engagement):
    cid = await engagement.community()
    await engagement.feed("group.registered", group(cid, CORE, "B"), community_id=cid)
    response = await candidates(engagement, cid, source="telegram:-999")
    assert response.status_code == 422
    assert "telegram:-999" in response.json()["detail"]
    assert (await candidates(engagement, cid, source="telegram:-999", core_group_id=CORE)).status_code == 200


async def test_bounded_labelled_metrics_exist_at_zero_before_any_activity(engagement):
    text = (await engagement.client.get("/metrics")).text
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for family in text_string_to_metric_families(text) for s in family.samples}
    p = "qunzhu_engagement_"
    for name, labels in [
        ("activities_scored_total", (("rule_type", "noise"),)),
        ("activities_scored_total", (("rule_type", "none"),)),
        ("points_awarded_points_total", (("rule_type", "checkin"),)),
        ("ledger_entries_total", (("kind", "reversal"), ("rule_type", "homework_grade_bonus"))),
        ("levels_reached_total", (("level", "1"),)),
        ("levels_reached_total", (("level", "9"),)),
        ("members_by_level_members", (("level", "9"),)),
        ("removals_recommended_total", (("reason", "rule_violation"),)),
        ("strikes_total", (("kind", "bare_link"),)),
    ]:
        assert got[(p + name, labels)] == 0, (name, labels)


async def test_members_by_level_drops_to_zero_for_a_level_nobody_holds(engagement):
    from engagement.jobs.runner import run_all

    engagement.app.state.engagement.metrics.members_by_level.labels("3").set(5)  # a stale count
    await run_all(engagement.app)
    text = (await engagement.client.get("/metrics")).text
    [value] = [s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "qunzhu_engagement_members_by_level_members" and s.labels == {"level": "3"}]
    assert value == 0
