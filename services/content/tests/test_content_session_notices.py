"""Issue #18: late-created sessions still announced (one catch-up preview), the notices a session shows,
human titles of its generated schedules, and the list of a community's sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from content.sessions.service import human_span, schedule_title

TOPIC = "从 0 到 1 做社群"


@pytest.fixture
async def c(bus, start_content_at, seed_community, clock):
    async with start_content_at() as content:
        yield await seed_community(bus, content, clock, groups=3)


def body(c, starts_at: datetime, **overrides) -> dict:
    data = {
        "topic": TOPIC,
        "guest_id": c.guest,
        "guest_name": "王嘉宾",
        "host_id": c.admin,
        "starts_at": starts_at.isoformat(),
        "ends_at": (starts_at + timedelta(minutes=90)).isoformat(),
        "source_group_id": c.groups[0],
        "target_group_ids": c.groups[1:],
    }
    data.update(overrides)
    return data


async def create(c, starts_at: datetime, **overrides) -> dict:
    response = await c.post("/sessions", body(c, starts_at, **overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def announcements(c, outbox_events) -> list[str]:
    """What one target group was told (previews and the start), in order."""
    return [
        a["data"]["text"]
        for a in await outbox_events(c.content, "chat.action.requested")
        if a["key"] == c.groups[1] and a["data"]["action"] == "announce"
    ]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_session_created_3_minutes_before_it_starts_is_announced_once_at_once(c, clock, outbox_events):
    start = c.t0 + timedelta(minutes=3)
    created = await create(c, start)
    (notice,) = created["notices"]
    assert notice["kind"] == "preview" and notice["catch_up"] is True
    assert (notice["offset_s"], at(notice["due_at"]), notice["status"], notice["sent_at"]) == (
        180,
        c.t0,
        "scheduled",
        None,
    )

    assert (await c.tick()).fired == 1
    (text,) = await announcements(c, outbox_events)
    assert "还有 3 分钟" in text and "欢迎转发" in text and TOPIC in text and "王嘉宾" in text

    shown = (await c.get(f"/sessions/{created['id']}")).json()
    (notice,) = shown["notices"]
    assert (notice["status"], at(notice["sent_at"])) == ("sent", c.t0)
    broadcast = (await c.get(f"/broadcasts/{notice['broadcast_id']}")).json()
    assert broadcast["source"] == "session"

    clock.advance(minutes=1)
    assert (await c.tick()).fired == 0  # once only
    clock.set(start)
    assert (await c.tick()).fired == 1  # the start
    texts = await announcements(c, outbox_events)
    assert len(texts) == 2 and "现在开始" in texts[1]


async def test_a_session_created_3_hours_ahead_gets_a_catch_up_then_t_1h_and_t_5min(c, clock, outbox_events):
    start = c.t0 + timedelta(hours=3)
    created = await create(c, start)
    notices = created["notices"]
    assert [(n["offset_s"], n["catch_up"], at(n["due_at"])) for n in notices] == [
        (3 * 3600, True, c.t0),
        (3600, False, start - timedelta(hours=1)),
        (300, False, start - timedelta(minutes=5)),
    ]
    titles = {s["title"] for s in (await c.get("/schedules", kind="session_preview")).json()}
    assert titles == {
        f"预告：{TOPIC}（补发，提前 3 小时）",
        f"预告：{TOPIC}（提前 1 小时）",
        f"预告：{TOPIC}（提前 5 分钟）",
    }

    clock.advance(seconds=20)  # the scheduler's pass comes a little later: the text says what is left then
    for due in (c.t0 + timedelta(seconds=20), start - timedelta(hours=1), start - timedelta(minutes=5)):
        clock.set(due)
        assert (await c.tick()).fired == 1
    texts = await announcements(c, outbox_events)
    assert len(texts) == 3
    assert "还有 3 小时" in texts[0] and "欢迎转发" in texts[0]
    assert "还有 1 小时" in texts[1] and "还有 5 分钟" in texts[2]

    shown = (await c.get(f"/sessions/{created['id']}")).json()["notices"]
    assert [(n["status"], at(n["sent_at"])) for n in shown] == [
        ("sent", c.t0 + timedelta(seconds=20)),
        ("sent", start - timedelta(hours=1)),
        ("sent", start - timedelta(minutes=5)),
    ]
    assert len({n["broadcast_id"] for n in shown}) == 3


async def test_previews_all_ahead_have_no_catch_up_and_human_titles(c):
    start = c.t0 + timedelta(days=3)
    created = await create(c, start)
    assert [(n["offset_s"], n["catch_up"], n["status"]) for n in created["notices"]] == [
        (48 * 3600, False, "scheduled"),
        (3600, False, "scheduled"),
        (300, False, "scheduled"),
    ]
    titles = {s["kind"] + " " + s["title"] for s in (await c.get("/schedules")).json()}
    assert titles == {
        f"session_preview 预告：{TOPIC}（提前 2 天）",
        f"session_preview 预告：{TOPIC}（提前 1 小时）",
        f"session_preview 预告：{TOPIC}（提前 5 分钟）",
        f"session_start 开始：{TOPIC}",
        f"session_end 结束：{TOPIC}",
    }
    cancelled = (await c.post(f"/sessions/{created['id']}/cancel")).json()
    assert {n["status"] for n in cancelled["notices"]} == {"cancelled"}
    assert all(n["sent_at"] is None for n in cancelled["notices"])


async def test_catch_up_can_be_switched_off(bus, start_content_at, seed_community, clock):
    async with start_content_at(session_catch_up_preview=False) as content:
        c = await seed_community(bus, content, clock, groups=3)
        created = await create(c, c.t0 + timedelta(hours=3))
        assert [(n["offset_s"], n["catch_up"]) for n in created["notices"]] == [(3600, False), (300, False)]
        late = await create(c, c.t0 + timedelta(minutes=3))
        assert late["notices"] == []


async def test_sessions_are_listed_by_start_with_filters_and_pages(c):
    starts = [c.t0 + timedelta(days=d, hours=1) for d in (5, 1, 3, 2, 4)]
    ids = [(await create(c, s, topic=f"分享 {i}"))["id"] for i, s in enumerate(starts)]
    await c.post(f"/sessions/{ids[2]}/cancel")
    by_start = [i for _, i in sorted(zip(starts, ids, strict=True))]

    page = (await c.get("/sessions", actor=c.member)).json()  # members read sessions, as one session
    assert page["count"] == 5 and [s["id"] for s in page["data"]] == by_start
    assert all(len(s["notices"]) == 3 for s in page["data"])

    first = (await c.get("/sessions", limit=2)).json()
    second = (await c.get("/sessions", limit=2, offset=2)).json()
    assert [s["id"] for s in first["data"] + second["data"]] == by_start[:4] and second["count"] == 5
    newest = (await c.get("/sessions", order="desc", limit=1)).json()
    assert [s["id"] for s in newest["data"]] == [by_start[-1]]

    cancelled = (await c.get("/sessions", status="cancelled")).json()
    assert (cancelled["count"], [s["id"] for s in cancelled["data"]]) == (1, [ids[2]])
    assert (await c.get("/sessions", status="scheduled")).json()["count"] == 4

    window = (
        await c.get(
            "/sessions",
            starts_from=(c.t0 + timedelta(days=2)).isoformat(),
            starts_before=(c.t0 + timedelta(days=4, hours=1)).isoformat(),
        )
    ).json()
    assert [s["id"] for s in window["data"]] == [ids[3], ids[2]] and window["count"] == 2

    assert (await c.get("/sessions", limit=201)).status_code == 422
    assert (await c.get("/sessions", status="nonsense")).status_code == 422
    assert (await c.get("/sessions", starts_from="2026-11-27T00:00:00")).status_code == 422  # no zone
    assert (await c.get("/sessions", actor="wecom:stranger")).status_code == 403


def test_human_spans_and_titles():
    assert [human_span(s) for s in (172800, 3600, 300, 5400, 90061, 45)] == [
        "2 天",
        "1 小时",
        "5 分钟",
        "1 小时 30 分钟",
        "1 天 1 小时 1 分钟 1 秒",
        "45 秒",
    ]
    title = schedule_title("预告", "长" * 200, "提前 2 天")
    assert len(title) == 200 and title.startswith("预告：长") and title.endswith("…（提前 2 天）")
