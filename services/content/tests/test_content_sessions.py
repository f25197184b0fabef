"""Guest sharing sessions: previews at T-48h/T-1h/T-5min, live relay in order, Q&A, attendance, summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMessagePosted

START = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)  # Sunday 20:30 in Shanghai


@pytest.fixture
async def c(bus, start_content_at, seed_community, clock):
    async with start_content_at() as content:
        yield await seed_community(bus, content, clock, groups=4)


async def create_session(c, **overrides) -> dict:
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
    body.update(overrides)
    response = await c.post("/sessions", body)
    assert response.status_code == 201, response.text
    return response.json()


def message(c, group: str, sender: str, text: str, at: datetime, n: int, name: str = "") -> ChatMessagePosted:
    return ChatMessagePosted(
        platform="wecom",
        group_id=group,
        delivery_id=f"d{n}",
        message_id=f"m{n}",
        sender_id=sender,
        sender_name=name,
        text=text,
        sent_at=at,
    )


async def test_previews_fire_before_the_session_with_the_forward_request(c, clock, outbox_events):
    session = await create_session(c)
    previews = (await c.get("/schedules", kind="session_preview")).json()
    assert sorted(s["next_due_at"] for s in previews) == [
        "2026-11-27T12:30:00Z",
        "2026-11-29T11:30:00Z",
        "2026-11-29T12:25:00Z",
    ]
    (announced,) = await outbox_events(c.content, "session.announced")
    assert announced["data"]["target_group_ids"] == c.groups[1:]

    for due in ("2026-11-27T12:30:00+00:00", "2026-11-29T11:30:00+00:00", "2026-11-29T12:25:00+00:00"):
        clock.set(datetime.fromisoformat(due))
        assert (await c.tick()).fired == 1
    texts = [
        a["data"]["text"] for a in await outbox_events(c.content, "chat.action.requested") if a["key"] == c.groups[2]
    ]
    assert len(texts) == 3
    assert "欢迎转发" in texts[0] and "11月29日 20:30" in texts[0]
    assert "1 小时" in texts[1] and "5 分钟" in texts[2]
    assert (await c.get(f"/sessions/{session['id']}")).json()["status"] == "scheduled"


async def test_a_preview_already_past_is_caught_up_once_and_a_past_start_is_refused(c):
    soon = c.t0 + timedelta(hours=2)
    await create_session(c, starts_at=soon.isoformat(), ends_at=(soon + timedelta(hours=1)).isoformat())
    previews = (await c.get("/schedules", kind="session_preview")).json()
    assert len(previews) == 3  # T-48h was already past: one catch-up now, then T-1h and T-5min
    past = await c.post(
        "/sessions",
        {
            "topic": "t",
            "guest_id": c.guest,
            "host_id": c.admin,
            "starts_at": c.t0.isoformat(),
            "ends_at": (c.t0 + timedelta(hours=1)).isoformat(),
            "source_group_id": c.groups[0],
            "target_group_ids": c.groups[1:],
        },
    )
    assert past.status_code == 422 and past.json()["errors"][0]["loc"] == ["body", "starts_at"]


async def test_live_relay_in_order_questions_attendance_and_summary(
    c, bus, clock, publish_event, outbox_events, eventually
):
    session = await create_session(c)
    clock.set(START)
    await c.tick()
    assert (await c.get(f"/sessions/{session['id']}")).json()["status"] == "live"
    (started,) = await outbox_events(c.content, "session.started")
    assert started["data"]["guest_id"] == c.guest

    src, other = c.groups[0], c.groups[2]
    talk = ["大家好，我是王嘉宾", "第一点：定位要清楚", "第二点：门槛要有", "第三点：仪式感"]
    chat = []
    for i, text in enumerate(talk):
        chat.append(message(c, src, c.guest, text, START + timedelta(minutes=1 + i), i, name="王嘉宾"))
    chat.insert(2, message(c, src, c.member, "门槛多少合适？", START + timedelta(minutes=2, seconds=30), 90))
    chat.insert(3, message(c, other, c.gold, "在听", START + timedelta(minutes=2, seconds=40), 91))
    chat.append(message(c, src, c.admin, "下面进入问答", START + timedelta(minutes=50), 92))
    chat.append(message(c, src, c.member, "会后有回放吗", START + timedelta(hours=3), 93))  # after the end: ignored
    for m in chat:
        await publish_event(bus, type="chat.message.posted", community_id=c.id, source="gateway", data=m)
    await publish_event(
        bus,
        type="chat.command.issued",
        community_id=c.id,
        source="gateway",
        data=ChatCommandIssued(
            platform="wecom",
            group_id=other,
            delivery_id="d94",
            message_id="m94",
            sender_id=c.gold,
            command="question",
            argument="付费群怎么续费",
            sent_at=START + timedelta(minutes=55),
        ),
    )

    async def relayed() -> list[dict]:
        clock.advance(seconds=1)  # the platform's rate limit refills with (fake) time
        await c.content.app.state.dispatcher.run_once()
        actions = [a for a in await outbox_events(c.content, "chat.action.requested") if a["data"]["action"] == "relay"]
        return actions if len(actions) == 5 * 3 else []

    actions = await eventually(relayed, what="relays of the five talk messages to three groups")
    for target in c.groups[1:]:
        texts = [a["data"]["text"] for a in actions if a["key"] == target]
        assert texts == [f"【嘉宾 王嘉宾】{t}" for t in talk] + [f"【主持 {c.admin}】下面进入问答"]
    assert src not in {a["key"] for a in actions}
    assert await c.content.metric("qunzhu_content_relay_latency_seconds_count") == 15

    await eventually(lambda: _questions(c, session["id"], 2), what="two questions")
    clock.set(START + timedelta(minutes=90))
    assert (await c.tick()).fired == 1
    ended = (await c.get(f"/sessions/{session['id']}")).json()
    assert ended["status"] == "ended"
    assert "第二点：门槛要有" in ended["summary_draft"] and "付费群怎么续费" in ended["summary_draft"]
    (event,) = await outbox_events(c.content, "session.ended")
    data = event["data"]
    assert (data["talk_messages"], data["questions"]) == (5, 2)
    assert set(data["questioner_ids"]) == {c.member, c.gold}
    by_group = {a["group_id"]: a for a in data["attendance"]}
    assert by_group[src]["messages"] == 6 and set(by_group[src]["attendee_ids"]) == {c.guest, c.member, c.admin}
    assert by_group[other] == {"group_id": other, "attendee_ids": [c.gold], "messages": 2, "relayed_messages": 5}

    # Only the host (or owner/admin) approves; the summary becomes a post authored by the guest.
    assert (await c.post(f"/sessions/{session['id']}/summary/approve", {}, actor=c.member)).status_code == 403
    approved = await c.post(f"/sessions/{session['id']}/summary/approve", {"level": "beginner"}, actor=c.admin)
    assert approved.status_code == 201, approved.text
    post = approved.json()
    assert (post["kind"], post["author_id"], post["state"]) == ("summary", c.guest, "published")
    (published,) = await outbox_events(c.content, "post.published")
    assert (published["data"]["session_id"], published["data"]["guest_id"]) == (session["id"], c.guest)


async def _questions(c, session_id: str, n: int) -> bool:
    return len((await c.get(f"/sessions/{session_id}/questions")).json()) == n


async def test_a_cancelled_session_sends_no_preview_and_never_starts(c, clock):
    session = await create_session(c)
    assert (await c.post(f"/sessions/{session['id']}/cancel", actor=c.member)).status_code == 403
    cancelled = await c.post(f"/sessions/{session['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    clock.set(START + timedelta(hours=2))
    assert (await c.tick()).fired == 0
    assert {s["status"] for s in (await c.get("/schedules")).json()} == {"cancelled"}
