"""Rituals with countdowns, the weekly digest, and the scheduler running on its own (real clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FRIDAY_21 = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=21;BYMINUTE=0;BYSECOND=0"  # 13:00 UTC


async def test_friday_welfare_night_with_countdowns_at_t_minus_24h_and_1h(
    bus, start_content_at, seed_community, clock, outbox_events
):
    async with start_content_at() as content:
        c = await seed_community(bus, content, clock, groups=2)
        ritual = await c.post(
            "/rituals", {"title": "福利夜", "text": "抽奖开始！", "rrule": FRIDAY_21, "starts_at": c.t0.isoformat()}
        )
        assert ritual.status_code == 201, ritual.text
        schedules = ritual.json()["schedules"]
        assert sorted(s["next_due_at"] for s in schedules) == [
            "2026-11-26T13:00:00Z",
            "2026-11-27T12:00:00Z",
            "2026-11-27T13:00:00Z",
        ]
        for due in ("2026-11-26T13:00:00+00:00", "2026-11-27T12:00:00+00:00", "2026-11-27T13:00:00+00:00"):
            clock.set(datetime.fromisoformat(due))
            assert (await c.tick()).fired == 1
        texts = [
            a["data"]["text"] for a in await outbox_events(content, "chat.action.requested") if a["key"] == c.groups[0]
        ]
        assert texts == [
            "【倒计时】距离「福利夜」还有 1 天！",
            "【倒计时】距离「福利夜」还有 1 小时！",
            "【福利夜】抽奖开始！",
        ]

        paused = await c.post(f"/rituals/{ritual.json()['id']}/pause")
        assert {s["status"] for s in paused.json()["schedules"]} == {"paused"}
        clock.set(datetime(2026, 12, 4, 13, tzinfo=UTC))
        assert (await c.tick()).fired == 0


async def test_weekly_digest_lists_featured_then_most_discussed(
    bus, start_content_at, seed_community, clock, outbox_events
):
    async with start_content_at() as content:
        c = await seed_community(bus, content, clock, groups=1)
        ids = []
        for title in ("A", "B", "C"):
            ids.append((await c.post("/posts", {"title": title, "publish": True})).json()["id"])
        await c.post(f"/posts/{ids[1]}/comments", {"body_md": "好"}, actor=c.member)
        await c.post(f"/posts/{ids[2]}/featured", {"featured": True}, method="PUT")
        digest = await c.post("/digests", {"starts_at": c.t0.isoformat()})
        assert digest.status_code == 201 and digest.json()["next_due_at"] == "2026-11-30T01:00:00Z"  # Mon 09:00
        clock.set(datetime(2026, 11, 30, 1, 0, 5, tzinfo=UTC))
        assert (await c.tick()).fired == 1
        (action,) = await outbox_events(content, "chat.action.requested")
        assert action["data"]["text"].splitlines() == [
            "【本周精华】",
            "1. ⭐C（0 条讨论）",
            "2. B（1 条讨论）",
            "3. A（0 条讨论）",
        ]


async def test_the_scheduler_task_fires_on_its_own(bus, start_content_live, seed_community, eventually, outbox_events):
    async with start_content_live() as content:
        c = await seed_community(bus, content, content.app.state.content.clock, groups=2)
        due = datetime.now(UTC) + timedelta(milliseconds=300)
        response = await c.post("/schedules", {"text": "准点", "starts_at": due.isoformat()})
        assert response.status_code == 201, response.text

        async def commands() -> list[dict]:
            return await outbox_events(content, "chat.action.requested")

        sent = await eventually(lambda: _n(commands(), 2), what="the fired schedule's two commands")
        assert [a["key"] for a in sent] == c.groups
        assert 0 <= (await outbox_events(content, "schedule.fired"))[0]["data"]["lateness_s"] < 2


async def _n(coro, n: int):
    rows = await coro
    return rows if len(rows) == n else None
