"""Broadcast fan-out: one command per group, stable order, per-platform rate limit, retries, delivery status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qunzhu_common.events.contracts.chat import ChatActionSettled


@pytest.fixture
async def content(start_content_at):
    async with start_content_at(platform_rate_per_s={"wechat": 5.0}, delivery_retry_backoff_s=10) as content:
        yield content


async def deliveries(c, broadcast_id: str) -> list[dict]:
    response = await c.get(f"/broadcasts/{broadcast_id}")
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


async def test_one_command_per_group_in_a_stable_order_then_delivered(
    bus, content, seed_community, clock, outbox_events
):
    c = await seed_community(bus, content, clock, groups=4)
    created = await c.post("/broadcasts", {"text": "今晚 21:00 福利夜", "action": "announce", "mention_all": True})
    assert created.status_code == 201, created.text
    body = created.json()
    assert [d["group_id"] for d in body["deliveries"]] == c.groups
    assert {d["status"] for d in body["deliveries"]} == {"pending"}

    assert await content.app.state.dispatcher.run_once() == 4
    actions = await outbox_events(content, "chat.action.requested")
    assert [a["key"] for a in actions] == c.groups  # keyed by group, in fan-out order
    assert {(a["data"]["action"], a["data"]["mention_all"], a["data"]["requested_by"]) for a in actions} == {
        ("announce", True, "content")
    }
    assert {d["status"] for d in await deliveries(c, body["id"])} == {"sent"}
    (delivered,) = await outbox_events(content, "broadcast.delivered")
    assert delivered["data"]["group_ids"] == c.groups and delivered["data"]["sent"] == 4
    assert await content.metric("qunzhu_content_broadcast_deliveries_total", platform="wecom", status="sent") == 4


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


async def test_failed_deliveries_are_retried_then_given_up_and_reported(
    bus, content, seed_community, clock, publish_event, outbox_events, eventually
):
    c = await seed_community(bus, content, clock, groups=2)
    broadcast = (await c.post("/broadcasts", {"text": "hello"})).json()
    dispatcher = content.app.state.dispatcher
    await dispatcher.run_once()

    async def fail(group_id: str, action_id: str) -> None:
        await publish_event(
            bus,
            type="chat.action.failed",
            community_id=c.id,
            source="gateway",
            data=ChatActionSettled(
                action_id=action_id,
                action="send_message",
                group_id=group_id,
                attempts=3,
                error="bot kicked",
                settled_at=datetime.now(UTC),
            ),
        )

    async def status_of(group_id: str) -> dict:
        return next(d for d in await deliveries(c, broadcast["id"]) if d["group_id"] == group_id)

    target = c.groups[1]
    for attempt in (1, 2, 3):
        actions = [a for a in await outbox_events(content, "chat.action.requested") if a["key"] == target]
        assert len(actions) == attempt
        await fail(target, actions[-1]["data"]["action_id"])
        expected = "failed" if attempt == 3 else "pending"
        await eventually(lambda e=expected: _is(status_of(target), e), what=f"delivery {expected}")
        clock.advance(seconds=10 * 2 ** (attempt - 1))
        await dispatcher.run_once()

    final = await deliveries(c, broadcast["id"])
    assert [(d["status"], d["attempts"]) for d in final] == [("sent", 1), ("failed", 3)]
    assert final[1]["last_error"] == "bot kicked"
    reports = await outbox_events(content, "broadcast.delivered")
    assert (reports[-1]["data"]["sent"], reports[-1]["data"]["failed_group_ids"]) == (1, [target])
    assert await content.metric("qunzhu_content_broadcast_deliveries_total", platform="wecom", status="retried") == 2


async def _is(status_coro, expected: str) -> bool:
    return (await status_coro)["status"] == expected


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
