"""Broadcast fan-out: one command per group, stable order, per-platform rate limit, a status that adds up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.contracts.chat import ChatActionSettled
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry
from qunzhu_common.events.topics import CHAT_ACTIONS

CONSUMED = "qunzhu_content_events_consumed_total"


@pytest.fixture
async def content(start_content_at):
    async with start_content_at(platform_rate_per_s={"wechat": 5.0}, delivery_gives_up_after_s=120) as content:
        yield content


async def deliveries(c, broadcast_id: str) -> list[dict]:
    response = await c.get(f"/broadcasts/{broadcast_id}")
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


async def answer(bus, c, action: dict, *, ok: bool, error: str = "bridge: HTTP 500", times: int = 1) -> None:
    """The gateway's final answer to one command, as one event published `times` times (a redelivery)."""
    envelope = new_envelope(
        type="chat.action.completed" if ok else "chat.action.failed",
        source="gateway",
        community_id=c.id,
        data=ChatActionSettled(
            action_id=action["data"]["action_id"],
            action=action["data"]["action"],
            group_id=action["data"]["group_id"],
            attempts=5,
            error="" if ok else error,
            settled_at=datetime.now(UTC),
        ),
    )
    topic, key = default_registry().route(envelope)
    for _ in range(times):
        await bus.publish([OutgoingRecord(topic=topic, key=key, value=envelope.to_bytes())])


async def consumed(content, eventually, outcome: str, n: int, type_: str) -> None:
    async def reached():
        return await content.metric(CONSUMED, topic=CHAT_ACTIONS, type=type_, outcome=outcome) >= n

    await eventually(reached, what=f"{n} {type_} {outcome}")


async def broadcast_of(c, broadcast_id: str) -> dict:
    response = await c.get(f"/broadcasts/{broadcast_id}")
    assert response.status_code == 200, response.text
    return response.json()


def counts(body: dict) -> tuple:
    return body["status"], body["groups_total"], body["delivered"], body["failed"], body["pending"]


async def test_one_command_per_group_in_a_stable_order_then_delivered_once_all_confirm(
    bus, content, seed_community, clock, outbox_events, eventually
):
    c = await seed_community(bus, content, clock, groups=4)
    created = await c.post("/broadcasts", {"text": "今晚 21:00 福利夜", "action": "announce", "mention_all": True})
    assert created.status_code == 201, created.text
    body = created.json()
    assert [d["group_id"] for d in body["deliveries"]] == c.groups
    assert {d["status"] for d in body["deliveries"]} == {"pending"}
    assert counts(body) == ("sending", 4, 0, 0, 4) and body["gives_up_after_s"] == 120

    assert await content.app.state.dispatcher.run_once() == 4
    actions = await outbox_events(content, "chat.action.requested")
    assert [a["key"] for a in actions] == c.groups  # keyed by group, in fan-out order
    assert {(a["data"]["action"], a["data"]["mention_all"], a["data"]["requested_by"]) for a in actions} == {
        ("announce", True, "content")
    }
    assert {d["status"] for d in await deliveries(c, body["id"])} == {"sent"}
    # Sent is not delivered: nothing is announced before the gateway's answers.
    assert counts(await broadcast_of(c, body["id"])) == ("sending", 4, 0, 0, 4)
    assert await outbox_events(content, "broadcast.delivered") == []
    assert await content.metric("qunzhu_content_broadcast_deliveries_total", platform="wecom", status="sent") == 4

    for action in actions:
        await answer(bus, c, action, ok=True)
    await consumed(content, eventually, "processed", 4, "chat.action.completed")
    final = await broadcast_of(c, body["id"])
    assert counts(final) == ("delivered", 4, 4, 0, 0)
    assert {d["status"] for d in final["deliveries"]} == {"confirmed"}
    (delivered,) = await outbox_events(content, "broadcast.delivered")
    assert delivered["data"]["group_ids"] == c.groups
    assert (delivered["data"]["status"], delivered["data"]["sent"], delivered["data"]["failed"]) == ("delivered", 4, 0)


async def test_audiences_by_role_and_explicit_list_and_foreign_groups_refused(bus, content, seed_community, clock):
    c = await seed_community(bus, content, clock, groups=4)
    b_groups = (await c.post("/broadcasts", {"text": "核心群", "audience": {"kind": "role", "role": "B"}})).json()
    assert [d["group_id"] for d in b_groups["deliveries"]] == c.groups[1::2]
    listed = await c.post("/broadcasts", {"text": "x", "audience": {"kind": "groups", "group_ids": c.groups[::-1][:2]}})
    assert [d["group_id"] for d in listed.json()["deliveries"]] == c.groups[::-1][:2]

    other = await seed_community(bus, content, clock, name="other", groups=1)
    foreign = await c.post("/broadcasts", {"text": "x", "audience": {"kind": "groups", "group_ids": other.groups}})
    assert foreign.status_code == 403 and "another community" in foreign.json()["detail"]
    unknown = await c.post("/broadcasts", {"text": "x", "audience": {"kind": "groups", "group_ids": ["wecom:nope"]}})
    assert unknown.status_code == 422
    assert (await c.post("/broadcasts", {"text": "x"}, actor=c.guest)).status_code == 403


async def test_a_platform_rate_limit_spreads_the_fan_out_over_time(bus, content, seed_community, clock, outbox_events):
    c = await seed_community(bus, content, clock, groups=12, platform="wechat")
    broadcast = (await c.post("/broadcasts", {"text": "同步"})).json()
    dispatcher = content.app.state.dispatcher
    assert await dispatcher.run_once() == 5  # a burst of one second's worth
    assert await dispatcher.run_once() == 0
    clock.advance(seconds=0.4)
    assert await dispatcher.run_once() == 2
    clock.advance(seconds=1)
    assert await dispatcher.run_once() == 5
    assert [d["status"] for d in await deliveries(c, broadcast["id"])] == ["sent"] * 12
    assert [a["key"] for a in await outbox_events(content, "chat.action.requested")] == c.groups
    assert await content.metric("qunzhu_content_broadcast_rate_limited_total", platform="wechat") > 0


async def test_one_group_failing_is_partially_delivered_and_never_re_sent_by_content(
    bus, content, seed_community, clock, outbox_events, eventually
):
    c = await seed_community(bus, content, clock, groups=3)
    broadcast = (await c.post("/broadcasts", {"text": "hello"})).json()
    dispatcher = content.app.state.dispatcher
    await dispatcher.run_once()
    actions = await outbox_events(content, "chat.action.requested")
    target = c.groups[1]

    await answer(bus, c, actions[0], ok=True)
    await answer(bus, c, actions[1], ok=False, error="bridge: HTTP 500")
    await consumed(content, eventually, "processed", 1, "chat.action.failed")
    await consumed(content, eventually, "processed", 1, "chat.action.completed")
    assert counts(await broadcast_of(c, broadcast["id"])) == ("sending", 3, 1, 1, 1)
    await answer(bus, c, actions[2], ok=True)
    await consumed(content, eventually, "processed", 2, "chat.action.completed")

    body = await broadcast_of(c, broadcast["id"])
    assert counts(body) == ("partially_delivered", 3, 2, 1, 0)
    assert [(d["status"], d["attempts"]) for d in body["deliveries"]] == [
        ("confirmed", 1),
        ("failed", 1),
        ("confirmed", 1),
    ]
    assert body["deliveries"][1]["last_error"] == "bridge: HTTP 500"
    # The gateway's failure is final: content issues no second command (one retry budget, the gateway's).
    clock.advance(seconds=3600)
    await dispatcher.run_once()
    assert [a["key"] for a in await outbox_events(content, "chat.action.requested")] == c.groups
    (report,) = await outbox_events(content, "broadcast.delivered")
    assert (report["data"]["status"], report["data"]["sent"], report["data"]["failed"]) == ("partially_delivered", 2, 1)
    assert report["data"]["failed_group_ids"] == [target]
    assert await content.metric("qunzhu_content_broadcast_deliveries_total", platform="wecom", status="retried") == 0


async def test_every_group_failing_is_failed(bus, content, seed_community, clock, outbox_events, eventually):
    c = await seed_community(bus, content, clock, groups=2)
    broadcast = (await c.post("/broadcasts", {"text": "hello"})).json()
    await content.app.state.dispatcher.run_once()
    for action in await outbox_events(content, "chat.action.requested"):
        await answer(bus, c, action, ok=False, error="bot kicked")
    await consumed(content, eventually, "processed", 2, "chat.action.failed")
    assert counts(await broadcast_of(c, broadcast["id"])) == ("failed", 2, 0, 2, 0)
    (report,) = await outbox_events(content, "broadcast.delivered")
    assert (report["data"]["status"], report["data"]["failed_group_ids"]) == ("failed", c.groups)


async def test_a_redelivered_or_repeated_answer_changes_nothing(
    bus, content, seed_community, clock, outbox_events, eventually
):
    c = await seed_community(bus, content, clock, groups=2)
    broadcast = (await c.post("/broadcasts", {"text": "hello"})).json()
    await content.app.state.dispatcher.run_once()
    ok_action, failing = await outbox_events(content, "chat.action.requested")

    await answer(bus, c, failing, ok=False, times=3)  # one event delivered three times
    await answer(bus, c, ok_action, ok=True, times=2)
    await consumed(content, eventually, "duplicate", 2, "chat.action.failed")
    await consumed(content, eventually, "duplicate", 1, "chat.action.completed")
    before = await broadcast_of(c, broadcast["id"])
    assert counts(before) == ("partially_delivered", 2, 1, 1, 0)

    # A second, different event answering the same command (a gateway replaying its outbox) is a no-op too.
    await answer(bus, c, failing, ok=True)
    await answer(bus, c, ok_action, ok=False)
    await consumed(content, eventually, "processed", 2, "chat.action.completed")
    await consumed(content, eventually, "processed", 2, "chat.action.failed")
    assert await broadcast_of(c, broadcast["id"]) == before
    assert len(await outbox_events(content, "broadcast.delivered")) == 1
    assert await content.metric("qunzhu_content_broadcast_deliveries_total", platform="wecom", status="failed") == 1
    assert await content.metric("qunzhu_content_broadcast_deliveries_total", platform="wecom", status="confirmed") == 1


async def test_a_group_unanswered_past_the_give_up_time_fails_and_a_late_confirmation_still_counts(
    bus, content, seed_community, clock, outbox_events, eventually
):
    c = await seed_community(bus, content, clock, groups=2)
    broadcast = (await c.post("/broadcasts", {"text": "hello"})).json()
    dispatcher = content.app.state.dispatcher
    await dispatcher.run_once()
    first, silent = await outbox_events(content, "chat.action.requested")
    await answer(bus, c, first, ok=True)
    await consumed(content, eventually, "processed", 1, "chat.action.completed")

    clock.advance(seconds=119)
    await dispatcher.run_once()
    assert counts(await broadcast_of(c, broadcast["id"])) == ("sending", 2, 1, 0, 1)
    clock.advance(seconds=1)
    await dispatcher.run_once()
    body = await broadcast_of(c, broadcast["id"])
    assert counts(body) == ("partially_delivered", 2, 1, 1, 0)
    assert body["deliveries"][1]["last_error"] == "no final answer from the gateway within 120 s"
    assert len(await outbox_events(content, "broadcast.delivered")) == 1

    await answer(bus, c, silent, ok=True)  # it did reach the group after all
    await consumed(content, eventually, "processed", 2, "chat.action.completed")
    assert counts(await broadcast_of(c, broadcast["id"])) == ("delivered", 2, 2, 0, 0)
    assert len(await outbox_events(content, "broadcast.delivered")) == 1  # announced once


async def test_broadcasts_listed_newest_first_filtered_by_status_and_time_and_paged(
    bus, content, seed_community, clock, outbox_events, eventually
):
    c = await seed_community(bus, content, clock, groups=2)
    start = clock.now()
    ids = []
    for i in range(5):
        ids.append((await c.post("/broadcasts", {"text": f"第 {i} 条"})).json()["id"])
        if i == 2:
            await content.app.state.dispatcher.run_once()  # the first three go out now
        clock.advance(seconds=60)
    actions = await outbox_events(content, "chat.action.requested")
    for action in actions[:2]:
        await answer(bus, c, action, ok=True)  # broadcast 0: delivered
    await answer(bus, c, actions[2], ok=False)  # broadcast 1: failed
    await answer(bus, c, actions[3], ok=False)
    await consumed(content, eventually, "processed", 2, "chat.action.failed")
    await consumed(content, eventually, "processed", 2, "chat.action.completed")

    listed = await c.get("/broadcasts")
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert (page["count"], page["offset"], page["limit"]) == (5, 0, 50)
    assert [b["id"] for b in page["data"]] == ids[::-1]
    assert [b["status"] for b in page["data"]] == ["sending", "sending", "sending", "failed", "delivered"]
    assert (page["data"][2]["pending"], page["data"][2]["groups_total"]) == (2, 2)
    assert "deliveries" not in page["data"][0] and page["data"][0]["gives_up_after_s"] == 120

    async def ids_of(**params) -> list[str]:
        response = await c.get("/broadcasts", **params)
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["data"]]

    assert await ids_of(status="failed") == [ids[1]]
    assert await ids_of(status="delivered") == [ids[0]]
    assert await ids_of(status="partially_delivered") == []
    window = {
        "created_from": (start + timedelta(seconds=60)).isoformat(),
        "created_to": (start + timedelta(seconds=180)).isoformat(),
    }
    assert await ids_of(**window) == [ids[2], ids[1]]
    assert await ids_of(sent_from=start.isoformat(), sent_to=(start + timedelta(seconds=300)).isoformat()) == ids[2::-1]
    assert await ids_of(sent_from=(start + timedelta(seconds=200)).isoformat()) == []
    assert await ids_of(limit=2, offset=1) == [ids[3], ids[2]]
    second = (await c.get("/broadcasts", limit=2, offset=4)).json()
    assert (second["count"], [b["id"] for b in second["data"]]) == (5, [ids[0]])

    assert (await c.get("/broadcasts", limit=201)).status_code == 422
    assert (await c.get("/broadcasts", status="delivering")).status_code == 422
    assert (await c.get("/broadcasts", created_from="2026-11-26T05:00:00")).status_code == 422  # no offset
    assert (await c.get("/broadcasts", actor=c.member)).status_code == 403
    other = await seed_community(bus, content, clock, name="other", groups=1)
    assert (await other.get("/broadcasts")).json()["count"] == 0


async def test_audience_by_member_tier_targets_the_groups_where_those_members_are(
    bus, content, seed_community, clock, publish_event, eventually
):
    from qunzhu_common.events.contracts.chat import ChatMemberJoined, ChatMemberLeft

    c = await seed_community(bus, content, clock, groups=4)
    at = datetime(2026, 11, 26, 5, tzinfo=UTC)
    for group, person in ((c.groups[3], c.gold), (c.groups[1], c.gold), (c.groups[0], c.member)):
        await publish_event(
            bus,
            type="chat.member.joined",
            community_id=c.id,
            source="gateway",
            data=ChatMemberJoined(
                platform="wecom",
                group_id=group,
                delivery_id=f"j-{group}-{person}",
                member_id=person,
                joined_at=at,
            ),
        )
    await publish_event(
        bus,
        type="chat.member.left",
        community_id=c.id,
        source="gateway",
        data=ChatMemberLeft(
            platform="wecom",
            group_id=c.groups[1],
            delivery_id="l1",
            member_id=c.gold,
            left_at=at.replace(hour=6),
        ),
    )

    async def gold_groups():
        response = await c.post("/broadcasts", {"text": "金卡专享", "audience": {"kind": "members", "tiers": ["gold"]}})
        groups = [d["group_id"] for d in response.json().get("deliveries", [])]
        return groups if groups == [c.groups[3]] else None

    await eventually(gold_groups, what="the gold member's remaining group")
    missing = await c.post("/broadcasts", {"text": "x", "audience": {"kind": "members"}})
    assert missing.status_code == 422


async def test_groups_announced_by_membership_and_levels_from_engagement_shape_audiences(
    bus, content, seed_community, clock, publish_event, eventually
):
    from qunzhu_common.events.contracts.chat import ChatMemberJoined
    from qunzhu_common.events.contracts.engagement import LevelReached
    from qunzhu_common.events.contracts.membership import GroupChanged

    c = await seed_community(bus, content, clock, groups=1)
    core = "wecom:core-from-membership"
    await publish_event(
        bus,
        type="group.registered",
        community_id=c.id,
        data=GroupChanged(
            community_id=c.id,
            group_id=core,
            platform="wecom",
            external_id="core",
            name="核心群",
            capacity=500,
            role="B",
            paid=True,
            changed_at=datetime(2026, 11, 26, 5, tzinfo=UTC),
        ),
    )

    async def groups() -> list[dict] | None:
        listed = (await c.get("/groups")).json()
        return listed if len(listed) == 2 else None

    listed = await eventually(groups, what="the group membership registered")
    assert {(g["group_id"], g["role"], g["title"]) for g in listed if g["group_id"] == core} == {(core, "B", "核心群")}

    at = datetime(2026, 11, 26, 5, tzinfo=UTC)
    await publish_event(
        bus,
        type="chat.member.joined",
        community_id=c.id,
        source="gateway",
        data=ChatMemberJoined(
            platform="wecom",
            group_id=core,
            delivery_id="j-core",
            member_id=c.member,
            joined_at=at,
        ),
    )
    await publish_event(
        bus,
        type="level.reached",
        community_id=c.id,
        source="engagement",
        data=LevelReached(
            community_id=c.id,
            person_id=c.member,
            level=3,
            previous_level=2,
            total_points=300,
            threshold=300,
            reached_at=at,
        ),
    )

    async def level_groups():
        response = await c.post("/broadcasts", {"text": "进阶", "audience": {"kind": "members", "min_level": 3}})
        found = [d["group_id"] for d in response.json().get("deliveries", [])]
        return found if found == [core] else None

    await eventually(level_groups, what="the level-3 member's group")
