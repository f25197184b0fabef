"""Part 7: celebrations — level, challenge, scholarship, anniversary; configurable, rate-limited, never for
removed members."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from engagement.activities.celebrations import anniversary_on
from qunzhu_common.bus.base import Record
from qunzhu_common.events.contracts.chat import ChatMemberJoined
from qunzhu_common.events.contracts.engagement import LevelReached, ScholarshipAwarded
from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.events.envelope import new_envelope

GROUP = "telegram:-100"
A, B, C = "telegram:1", "telegram:2", "telegram:3"
_ids = itertools.count(1)


async def setup(engagement, people=(A, B, C)) -> str:
    cid = await engagement.community()
    for person in people:
        await engagement.member(cid, person, name={A: "张三", B: "李四", C: "王五"}.get(person, ""))
        n = next(_ids)
        await engagement.feed("chat.member.joined", ChatMemberJoined(
            platform="telegram", group_id=GROUP, delivery_id=f"cj{n}", member_id=person,
            joined_at=datetime.now(UTC) - timedelta(days=30)), community_id=cid)
    return cid


async def relay_own_events(engagement, type_: str) -> None:
    """What the bus does with engagement's own events: hand them back to its consumer."""
    for envelope in await engagement.outbox_events(type_):
        await engagement.deliver(envelope)


async def celebrations(engagement, cid: str) -> list[dict]:
    return await engagement.get(f"/communities/{cid}/celebrations")


def level(cid: str, person: str, n: int, at: datetime) -> LevelReached:
    return LevelReached(community_id=cid, person_id=person, level=n, previous_level=n - 1, total_points=5 * n,
                        threshold=5, reached_at=at)


def test_anniversaries_fall_on_the_day_and_29_february_on_the_28th():
    assert anniversary_on(date(2024, 11, 26), date(2026, 11, 26)) == 2
    assert anniversary_on(date(2026, 11, 26), date(2026, 11, 26)) == 0
    assert anniversary_on(date(2025, 11, 25), date(2026, 11, 26)) == 0
    assert anniversary_on(date(2024, 2, 29), date(2025, 2, 28)) == 1
    assert anniversary_on(date(2024, 2, 29), date(2028, 2, 28)) == 0  # a leap year has its 29th
    assert anniversary_on(date(2024, 2, 29), date(2028, 2, 29)) == 4


async def test_a_level_reached_by_check_in_is_congratulated_once_in_the_members_group(engagement):
    cid = await setup(engagement, people=(A,))
    await engagement.command(cid, A, "checkin", datetime.now(UTC))  # 5 points: level 2
    await relay_own_events(engagement, "level.reached")
    await relay_own_events(engagement, "level.reached")  # redelivered: the inbox skips it
    rows = await celebrations(engagement, cid)
    assert [(r["kind"], r["status"], r["group_id"], r["text"]) for r in rows] == \
        [("level", "posted", GROUP, "🎉 恭喜 张三 升到 L2！")]
    posts = [e.data for e in await engagement.outbox_events("chat.action.requested")
             if e.data["action_id"].startswith("celebration:")]
    assert [(p["group_id"], p["member_id"]) for p in posts] == [(GROUP, A)]
    assert len(await engagement.outbox_events("celebration.posted")) == 1
    # the same level announced again by a different event id: still once
    await engagement.feed("level.reached", level(cid, A, 2, datetime.now(UTC)), community_id=cid)
    assert len(await celebrations(engagement, cid)) == 1


async def test_rate_limits_removed_members_and_settings(engagement):
    cid = await setup(engagement)
    await engagement.member(cid, C, status="removed", type_="member.removed")
    put = await engagement.client.put(f"/communities/{cid}/celebrations/settings", json={
        "kinds": ["level", "scholarship"], "group_hourly_limit": 2,
        "templates": {"scholarship": "👏 {name} 拿到「{title}」第 {rank} 名"}})
    assert put.status_code == 200, put.text
    now = datetime.now(UTC)
    await engagement.feed("level.reached", level(cid, A, 2, now), community_id=cid)
    await engagement.feed("level.reached", level(cid, A, 3, now + timedelta(minutes=1)), community_id=cid)
    await engagement.feed("level.reached", level(cid, C, 2, now), community_id=cid)
    await engagement.feed("scholarship.awarded", ScholarshipAwarded(
        community_id=cid, assignment_id="a1", assignment_title="第3周作业", person_id=B, rank=1, grade=5,
        awarded_at=now + timedelta(minutes=2)), community_id=cid)
    await engagement.feed("level.reached", level(cid, B, 2, now + timedelta(minutes=3)), community_id=cid)
    rows = {(r["person_id"], r["ref"]): r for r in await celebrations(engagement, cid)}
    assert rows[(A, f"{A}:L2")]["status"] == "posted"
    assert rows[(A, f"{A}:L3")]["skip_reason"].startswith("rate limit: one congratulation per member")
    assert rows[(C, f"{C}:L2")]["skip_reason"] == "member is removed, not active"
    scholarship = rows[(B, "a1:" + B)]
    assert (scholarship["text"], scholarship["status"]) == ("👏 李四 拿到「第3周作业」第 1 名", "posted")
    assert rows[(B, f"{B}:L2")]["skip_reason"].startswith("rate limit")  # B's own limit, and the group's 2/hour
    assert len(await engagement.outbox_events("celebration.posted")) == 2

    await engagement.client.put(f"/communities/{cid}/celebrations/settings", json={"enabled": False})
    await engagement.feed("level.reached", level(cid, A, 5, now + timedelta(days=3)), community_id=cid)
    assert (A, f"{A}:L5") not in {(r["person_id"], r["ref"]) for r in await celebrations(engagement, cid)}

    bad = await engagement.client.put(f"/communities/{cid}/celebrations/settings",
                                      json={"templates": {"level": "{name} {password}"}})
    assert bad.status_code == 422 and "unknown placeholders ['password']" in bad.json()["detail"]
    bad_kind = await engagement.client.put(f"/communities/{cid}/celebrations/settings", json={"kinds": ["birthday"]})
    assert bad_kind.status_code == 422


async def test_membership_anniversaries_are_celebrated_once_by_the_timer(engagement):
    cid = await engagement.community()
    at = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # noon in Shanghai
    joined = datetime(2025, 11, 25, 17, 0, tzinfo=UTC)  # 01:00 on 26 November in Shanghai
    await engagement.member(cid, A, joined_at=joined, name="张三")
    await engagement.member(cid, B, joined_at=joined + timedelta(days=1))  # tomorrow
    await engagement.member(cid, C, joined_at=joined, status="expired")
    for person in (A, B, C):
        await engagement.feed("chat.member.joined", ChatMemberJoined(
            platform="telegram", group_id=GROUP, delivery_id=f"ann{person}", member_id=person, joined_at=joined),
            community_id=cid)
    from engagement.activities.timers import run_due

    first = await run_due(engagement.app, now=at)
    again = await run_due(engagement.app, now=at + timedelta(minutes=1))
    assert (first["anniversaries"], again["anniversaries"]) == (1, 0)
    rows = await celebrations(engagement, cid)
    assert [(r["person_id"], r["kind"], r["text"]) for r in rows] == \
        [(A, "anniversary", "🎂 张三 加入社群 1 周年啦，感谢一路同行！")]


async def test_own_events_are_consumed_through_the_registry(engagement):
    """The handlers are wired into engagement's consumer (a typed event, validated like any other)."""
    cid = await setup(engagement, people=(A,))
    envelope = new_envelope(type="level.reached", data=level(cid, A, 4, datetime.now(UTC)), source="engagement",
                            community_id=cid)
    await engagement.deliver(envelope)
    assert [r["ref"] for r in await celebrations(engagement, cid)] == [f"{A}:L4"]


async def test_a_burst_of_level_ups_in_one_consumed_batch_decides_like_one_event_at_a_time(engagement, make_engagement):
    """#19: celebrations of a consumed batch are decided together (a handful of statements for the batch);
    rate limits, removed members, repeats of one ref and the events they emit stay exactly as one by one."""
    D = "telegram:4"
    now = datetime.now(UTC)
    drivers = {"one": engagement}
    async with make_engagement("batched", run_consumers=False) as batched:
        drivers["batch"] = batched
        results = {}
        for name, driver in drivers.items():
            cid = "c0ffee00-0000-4000-8000-000000000019"
            await driver.feed("community.created", CommunityCreated(
                community_id=cid, name="增长实验室", positioning="每天一个增长实验", owner_id="telegram:owner",
                created_at=now - timedelta(days=60)), community_id=cid)
            for person in (A, B, C, D):
                await driver.member(cid, person, name={A: "张三", B: "李四"}.get(person, ""))
                await driver.feed("chat.member.joined", ChatMemberJoined(
                    platform="telegram", group_id=GROUP, delivery_id=f"cj{name}{person}", member_id=person,
                    joined_at=now - timedelta(days=30)), community_id=cid)
            await driver.member(cid, C, status="removed", type_="member.removed")
            put = await driver.client.put(f"/communities/{cid}/celebrations/settings",
                                          json={"group_hourly_limit": 2, "member_interval_s": 600})
            assert put.status_code == 200, put.text
            burst = [
                level(cid, A, 2, now), level(cid, A, 3, now + timedelta(minutes=1)),  # A's own interval
                level(cid, C, 2, now), level(cid, B, 2, now + timedelta(minutes=2)),
                level(cid, B, 2, now + timedelta(minutes=2)),  # the same ref again: once
                level(cid, D, 2, now + timedelta(minutes=3)),  # the group's 2 an hour are used
                level(cid, A, 4, now + timedelta(minutes=20)),  # A's interval is over, the group's hour is not
            ]
            envelopes = [new_envelope(type="level.reached", data=d, source="engagement", community_id=cid,
                                      correlation_id=f"corr-{i}") for i, d in enumerate(burst)]
            if name == "one":
                for envelope in envelopes:
                    await driver.deliver(envelope)
            else:
                await driver.runtime.consumer.handle_batch([
                    Record(topic="engagement.events.v1", partition=0, offset=i, key=cid, value=e.to_bytes())
                    for i, e in enumerate(envelopes)])
            rows = await celebrations(driver, cid)
            posts = sorted((e.correlation_id, e.data["action_id"], e.data["text"])
                           for e in await driver.outbox_events("chat.action.requested"))
            posted = sorted((e.correlation_id, e.data["ref"]) for e in await driver.outbox_events("celebration.posted"))
            results[name] = (sorted((r["person_id"], r["ref"], r["status"], r["skip_reason"], r["text"]) for r in rows),
                             posts, posted)
    decided, posts, posted = results["batch"]
    assert [(ref, status) for _, ref, status, _, _ in decided] == [
        (f"{A}:L2", "posted"), (f"{A}:L3", "skipped"), (f"{A}:L4", "skipped"), (f"{B}:L2", "posted"),
        (f"{C}:L2", "skipped"), (f"{D}:L2", "skipped")]
    assert [c for c, _ in posted] == ["corr-0", "corr-3"]  # each post carries its own event's conversation
    assert results["batch"] == results["one"]
