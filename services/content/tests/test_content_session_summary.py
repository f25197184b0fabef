"""An approved summary reaches the session's groups: split within each platform's limit, in order, once,
and tracked per group as the gateway answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from content.sessions.summary import MEASURES, split_message
from content.settings import MessageLimit
from qunzhu_common.events.contracts.chat import ChatActionSettled

START = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
TELEGRAM = ["telegram:-1001", "telegram:-1002"]
WECOM_BYTES = MessageLimit(max=2048, unit="bytes")

# About 9,000 characters (27,000 UTF-8 bytes) of Chinese in paragraphs, lines and sentences.
LONG = "\n\n".join(
    f"## 第 {p} 部分\n" + "\n".join(f"- 第 {p}.{i} 点：社群运营要先想清楚定位，再谈增长和变现。" * 3 for i in range(12))
    for p in range(1, 9)
)


def unnumbered(parts: list[str]) -> str:
    return "".join(re.sub(r"^（\d+/\d+）\n", "", p) for p in parts)


def test_long_chinese_text_is_split_by_utf8_bytes_for_wecom_at_line_boundaries():
    parts = split_message(LONG, WECOM_BYTES)
    assert len(LONG) < 2048 * 5 and len(parts) > 13  # counted by characters it would be ~5 parts: bytes matter
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert [p.split("\n", 1)[0] for p in parts] == [f"（{i}/{len(parts)}）" for i in range(1, len(parts) + 1)]
    # In order, nothing lost, and every cut falls between lines (each part ends a line's sentence).
    assert re.sub(r"\s", "", unnumbered(parts)) == re.sub(r"\s", "", LONG)
    assert all(p.endswith("。") for p in parts)


def test_limits_per_unit_and_a_short_text_stays_whole():
    assert split_message("短消息", WECOM_BYTES) == ["短消息"]
    emoji = "🎉" * 3000  # 3,000 characters, 6,000 UTF-16 units for Telegram
    parts = split_message(emoji, MessageLimit(max=4096, unit="utf16"))
    assert len(parts) == 2 and all(MEASURES["utf16"](p) <= 4096 for p in parts)
    assert unnumbered(parts) == emoji  # no character cut in half
    sentences = "这是一句话。" * 1000  # no line break: cut between sentences
    parts = split_message(sentences, MessageLimit(max=4000))
    assert all(len(p) <= 4000 and p.endswith("。") for p in parts) and unnumbered(parts) == sentences


@pytest.fixture
async def c(bus, start_content_at, seed_community, clock):
    fast = {"wecom": 1000.0, "telegram": 1000.0}
    # The clock jumps 60 s a step while the gateway's answers are awaited; on a slow machine that could pass
    # the 120 s after which a part with no final answer is given up, which is not what these tests are about.
    async with start_content_at(platform_rate_per_s=fast, rate_burst_s=1.0, delivery_gives_up_after_s=3600) as content:
        community = await seed_community(bus, content, clock, groups=3)
        for group_id in TELEGRAM:
            response = await community.post("/groups", {"group_id": group_id, "role": "A"}, method="PUT")
            assert response.status_code == 200, response.text
            community.groups.append(group_id)
        yield community


async def ended_session(c, clock) -> dict:
    body = {
        "topic": "从 0 到 1 做社群",
        "guest_id": c.guest,
        "guest_name": "王嘉宾",
        "host_id": c.admin,
        "starts_at": START.isoformat(),
        "ends_at": (START + timedelta(minutes=90)).isoformat(),
        "source_group_id": c.groups[0],
        "target_group_ids": c.groups[1:],
    }
    response = await c.post("/sessions", body)
    assert response.status_code == 201, response.text
    for at in (START, START + timedelta(minutes=90)):
        clock.set(at)
        await c.tick()
    session = (await c.get(f"/sessions/{response.json()['id']}")).json()
    assert session["status"] == "ended" and session["summary_delivery"] is None
    return session


async def summary_actions(c, outbox_events) -> list[dict]:
    return [a for a in await outbox_events(c.content, "chat.action.requested") if a["data"].get("post_id")]


async def test_approval_posts_the_summary_to_every_group_in_order_once_and_tracks_each_group(
    c, clock, bus, publish_event, outbox_events, eventually
):
    session = await ended_session(c, clock)
    approved = await c.post(f"/sessions/{session['id']}/summary/approve", {"body_md": LONG}, actor=c.admin)
    assert approved.status_code == 201, approved.text
    post = approved.json()
    for _ in range(5):
        clock.advance(seconds=1)
        await c.content.app.state.dispatcher.run_once()
    actions = await summary_actions(c, outbox_events)
    assert {a["data"]["post_id"] for a in actions} == {post["id"]}
    assert {a["key"] for a in actions} == set(c.groups)  # the source group too

    series = {}
    for group_id in c.groups:
        mine = [a["data"] for a in actions if a["key"] == group_id]
        assert {d["action"] for d in mine} == {"send_message"}
        texts = [d["text"] for d in mine]
        n = len(texts)
        assert [t.split("\n", 1)[0] for t in texts] == [f"（{i}/{n}）" for i in range(1, n + 1)]  # one ordered series
        assert texts[0].startswith("（1/") and "【分享总结】从 0 到 1 做社群（分享总结）" in texts[0]
        assert re.sub(r"\s", "", unnumbered(texts)).endswith(re.sub(r"\s", "", LONG))
        if group_id.startswith("wecom:"):
            assert all(len(t.encode()) <= 2048 for t in texts)
        else:
            assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
        series[group_id] = mine
    assert len(series[c.groups[0]]) > len(series[TELEGRAM[0]]) >= 3  # bytes for WeCom, characters for Telegram

    # Approving again (or a retried request) publishes nothing and sends nothing more.
    again = await c.post(f"/sessions/{session['id']}/summary/approve", {"body_md": LONG}, actor=c.admin)
    assert again.status_code == 409
    clock.advance(seconds=5)
    await c.content.app.state.dispatcher.run_once()
    assert len(await summary_actions(c, outbox_events)) == len(actions)
    assert len(await outbox_events(c.content, "post.published")) == 1

    delivery = (await c.get(f"/sessions/{session['id']}")).json()["summary_delivery"]
    assert delivery["status"] == "delivering" and delivery["post_id"] == post["id"]
    assert [g["group_id"] for g in delivery["groups"]] == c.groups
    assert all(g["status"] == "delivering" and g["delivered_parts"] == 0 for g in delivery["groups"])

    async def settle(data: dict, *, ok: bool) -> None:
        await publish_event(
            bus,
            type="chat.action.completed" if ok else "chat.action.failed",
            community_id=c.id,
            source="gateway",
            data=ChatActionSettled(
                action_id=data["action_id"],
                action="send_message",
                group_id=data["group_id"],
                attempts=5 if not ok else 1,
                error="" if ok else "bot kicked",
                settled_at=datetime.now(UTC),
            ),
        )

    failing = TELEGRAM[1]  # its bot was removed: the second part fails for good
    answered: set[str] = set()

    async def settled():
        clock.advance(seconds=60)  # past any retry backoff
        await c.content.app.state.dispatcher.run_once()
        for data in [a["data"] for a in await summary_actions(c, outbox_events)]:
            if data["action_id"] not in answered:
                answered.add(data["action_id"])
                await settle(data, ok=not (data["group_id"] == failing and data["text"].startswith("（2/")))
        d = (await c.get(f"/sessions/{session['id']}")).json()["summary_delivery"]
        return d if d["status"] != "delivering" else None

    delivery = await eventually(settled, what="every group's final answer")
    assert (delivery["status"], delivery["delivered"], delivery["failed"]) == ("partially_delivered", 4, 1)
    by_group = {g["group_id"]: g for g in delivery["groups"]}
    assert by_group[failing]["status"] == "failed" and by_group[failing]["last_error"] == "bot kicked"
    assert by_group[failing]["part_statuses"][1] == "failed"
    assert by_group[c.groups[0]]["status"] == "delivered"
    assert by_group[c.groups[0]]["delivered_parts"] == by_group[c.groups[0]]["parts"] == len(series[c.groups[0]])


async def test_a_summary_within_the_limit_is_one_message_with_the_posts_link(
    bus, start_content_at, seed_community, clock, outbox_events
):
    template = "https://q.example/c/{community_id}/posts/{post_id}"
    async with start_content_at(post_url_template=template) as content:
        c = await seed_community(bus, content, clock, groups=2)
        session = await ended_session(c, clock)
        approved = await c.post(f"/sessions/{session['id']}/summary/approve", {"body_md": "短总结。"})
        assert approved.status_code == 201, approved.text
        post_id = approved.json()["id"]
        await c.tick()
        actions = await summary_actions(c, outbox_events)
        assert sorted(a["key"] for a in actions) == sorted(c.groups)
        for a in actions:
            assert a["data"]["text"] == (
                f"【分享总结】从 0 到 1 做社群（分享总结）\n\n短总结。\n\n全文：https://q.example/c/{c.id}/posts/{post_id}"
            )
