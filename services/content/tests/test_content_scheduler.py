"""The scheduler: each due occurrence fires exactly once — misfires, exceptions, pause, end date, restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from content.models import Broadcast, ScheduleOccurrence

DAILY_11 = "FREQ=DAILY;BYHOUR=11;BYMINUTE=0;BYSECOND=0"  # Asia/Shanghai: 03:00 UTC


@pytest.fixture
async def env(bus, start_content_at, seed_community, clock):
    async with start_content_at() as content:
        community = await seed_community(bus, content, clock)
        yield community


async def make_schedule(c, **overrides) -> dict:
    body = {"text": "今天的思维导图来了", "starts_at": c.t0.isoformat(), "rrule": DAILY_11}
    body.update(overrides)
    response = await c.post("/schedules", body)
    assert response.status_code == 201, response.text
    return response.json()


async def occurrences(c, schedule_id: str) -> list[dict]:
    response = await c.get(f"/schedules/{schedule_id}/occurrences")
    assert response.status_code == 200
    return sorted(response.json(), key=lambda o: o["occurs_at"])


async def broadcasts(c) -> list[Broadcast]:
    async with c.content.app.state.runtime.session_maker() as session:
        return list((await session.execute(select(Broadcast).order_by(Broadcast.created_at))).scalars())


async def test_a_daily_schedule_fires_each_occurrence_once_at_11_shanghai(env, clock, outbox_events):
    c = env
    schedule = await make_schedule(c)
    assert schedule["next_occurs_at"] == "2026-11-27T03:00:00Z"  # 11:00 today had passed at 12:00
    assert schedule["upcoming"][:2] == ["2026-11-27T03:00:00Z", "2026-11-28T03:00:00Z"]

    clock.set(c.t0 + timedelta(hours=22, minutes=59))
    assert (await c.tick()).fired == 0
    clock.set(c.t0 + timedelta(hours=23, seconds=2))
    first = await c.tick()
    again = await c.tick()
    assert (first.fired, again.fired) == (1, 0)
    assert first.lateness_s == [2.0]

    clock.advance(days=1)
    assert (await c.tick()).fired == 1
    fired = await occurrences(c, schedule["id"])
    assert [(o["occurs_at"], o["status"]) for o in fired] == [
        ("2026-11-27T03:00:00Z", "fired"),
        ("2026-11-28T03:00:00Z", "fired"),
    ]
    sent = await broadcasts(c)
    assert len(sent) == 2 and all(b.text == "今天的思维导图来了" for b in sent)
    events = await outbox_events(c.content, "schedule.fired")
    assert [e["data"]["occurs_at"] for e in events] == ["2026-11-27T03:00:00Z", "2026-11-28T03:00:00Z"]
    # One command per group per occurrence, keyed by group.
    actions = await outbox_events(c.content, "chat.action.requested")
    assert [a["key"] for a in actions] == c.groups * 2
    assert await c.content.metric("qunzhu_content_scheduler_lateness_seconds_count", kind="broadcast") == 2
    assert await c.content.metric("qunzhu_content_scheduler_lateness_seconds_sum", kind="broadcast") == 4.0


async def test_misfire_policy_fires_within_grace_and_skips_beyond_with_the_reason(env, clock, outbox_events):
    c = env
    schedule = await make_schedule(c)
    clock.set(c.t0 + timedelta(hours=23, minutes=4, seconds=59))  # 4:59 late: fires
    assert (await c.tick()).fired == 1
    clock.set(c.t0 + timedelta(days=1, hours=23, minutes=5, seconds=1))  # 5:01 late: skipped
    result = await c.tick()
    assert (result.fired, result.skipped) == (0, 1)
    late = (await occurrences(c, schedule["id"]))[-1]
    assert (late["status"], late["skip_reason"]) == ("skipped", "misfire")
    assert "301s late" in late["detail"]
    (skipped,) = await outbox_events(c.content, "occurrence.skipped")
    assert skipped["data"]["reason"] == "misfire"
    assert (
        await c.content.metric(
            "qunzhu_content_scheduler_occurrences_total", kind="broadcast", outcome="skipped", reason="misfire"
        )
        == 1
    )
    assert len(await broadcasts(c)) == 1


async def test_a_long_outage_skips_the_missed_occurrences_and_fires_the_next_on_time(env, clock):
    c = env
    schedule = await make_schedule(c, misfire_grace_s=60)
    clock.set(c.t0 + timedelta(days=4, hours=23, seconds=30))  # down for 4 days; the 5th is 30 s late
    result = await c.tick()
    assert (result.fired, result.skipped) == (1, 4)
    got = await occurrences(c, schedule["id"])
    assert [o["status"] for o in got] == ["skipped"] * 4 + ["fired"]


async def test_exceptions_pause_resume_and_end_date(env, clock):
    c = env
    schedule = await make_schedule(c, until_at=(c.t0 + timedelta(days=6)).isoformat())
    sid = schedule["id"]
    # No post on the 28th (an exception); one that is not an occurrence is a 422 naming the field.
    bad = await c.post(f"/schedules/{sid}/exceptions", {"occurs_at": "2026-11-28T04:00:00Z"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "occurs_at"]
    ok = await c.post(f"/schedules/{sid}/exceptions", {"occurs_at": "2026-11-28T03:00:00Z"})
    assert ok.json()["exceptions"] == ["2026-11-28T03:00:00Z"]

    for day in (0, 1):
        clock.set(c.t0 + timedelta(days=day, hours=23))
        await c.tick()
    assert [(o["status"], o["skip_reason"]) for o in await occurrences(c, sid)] == [
        ("fired", None),
        ("skipped", "exception"),
    ]
    # Paused over the 29th and 30th: nothing fires, nothing is made up on resume.
    assert (await c.post(f"/schedules/{sid}/pause")).json()["status"] == "paused"
    for day in (2, 3):
        clock.set(c.t0 + timedelta(days=day, hours=23))
        assert (await c.tick()).fired == 0
    clock.set(c.t0 + timedelta(days=3, hours=23, minutes=1))
    resumed = (await c.post(f"/schedules/{sid}/resume")).json()
    assert (resumed["status"], resumed["next_occurs_at"]) == ("active", "2026-12-01T03:00:00Z")
    for day in (4, 5, 6, 7):
        clock.set(c.t0 + timedelta(days=day, hours=23))
        await c.tick()
    got = await occurrences(c, sid)
    # The end date (Dec 2, 04:00 UTC) lets Dec 1 and Dec 2 fire, and nothing after.
    assert [o["occurs_at"][:10] for o in got if o["status"] == "fired"] == ["2026-11-27", "2026-12-01", "2026-12-02"]
    assert (await c.get(f"/schedules/{sid}")).json()["status"] == "completed"


async def test_a_restarted_service_does_not_fire_again(bus, start_content_at, seed_community, clock, tmp_path):
    db = tmp_path / "content-restart.sqlite3"
    async with start_content_at(db) as content:
        c = await seed_community(bus, content, clock)
        schedule = await make_schedule(
            c, rrule="FREQ=HOURLY;BYMINUTE=0;BYSECOND=0", starts_at=(c.t0 + timedelta(minutes=30)).isoformat()
        )
        clock.set(c.t0 + timedelta(hours=1))
        assert (await c.tick()).fired == 1
    async with start_content_at(db) as content:
        c.content = content
        assert (await c.tick()).fired == 0
        clock.set(c.t0 + timedelta(hours=2))
        assert (await c.tick()).fired == 1
        assert [o["status"] for o in await occurrences(c, schedule["id"])] == ["fired", "fired"]


async def test_two_schedulers_on_one_database_fire_each_occurrence_once(
    bus, start_content_at, seed_community, clock, tmp_path
):
    db = tmp_path / "content-shared.sqlite3"
    # One in-process bus allows one consumer per group: the second replica only schedules (and relays).
    second = start_content_at(db, scheduler_batch=7, run_consumers=False)
    async with start_content_at(db, scheduler_batch=7) as a, second as b:
        c = await seed_community(bus, a, clock, groups=1)
        for i in range(40):
            await make_schedule(c, rrule=None, starts_at=(c.t0 + timedelta(minutes=1, seconds=i)).isoformat())
        clock.set(c.t0 + timedelta(minutes=2))
        results = await asyncio.gather(*(app.app.state.scheduler.run_once() for app in (a, b, a, b)))
        assert sum(r.fired for r in results) == 40
        async with a.app.state.runtime.session_maker() as session:
            rows = list((await session.execute(select(ScheduleOccurrence))).scalars())
            made = list((await session.execute(select(Broadcast.occurrence_id))).scalars())
        assert len(rows) == 40 and {r.status for r in rows} == {"fired"}
        assert sorted(made) == sorted(r.id for r in rows)


async def test_bad_input_is_a_422_naming_the_field_and_nothing_is_scheduled(env, bus, seed_community, clock):
    c = env
    cases = {
        "rrule": {"rrule": "FREQ=SOMETIMES"},
        "timezone": {"timezone": "Asia/Beijing"},
        "until_at": {"until_at": (c.t0 - timedelta(days=1)).isoformat()},
        "starts_at": {"rrule": None, "starts_at": (c.t0 - timedelta(hours=1)).isoformat()},
    }
    for field, override in cases.items():
        response = await c.post(
            "/schedules", {"text": "x", "starts_at": c.t0.isoformat(), "rrule": DAILY_11, **override}
        )
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [part for e in response.json()["errors"] for part in e["loc"]], response.json()
    other = await seed_community(bus, c.content, clock, name="other", groups=1)
    foreign = await c.post(
        "/schedules",
        {
            "text": "x",
            "starts_at": c.t0.isoformat(),
            "rrule": DAILY_11,
            "audience": {"kind": "groups", "group_ids": [c.groups[0], other.groups[0]]},
        },
    )
    assert foreign.status_code == 403, foreign.text
    member = await c.post("/schedules", {"text": "x", "starts_at": c.t0.isoformat()}, actor=c.member)
    assert member.status_code == 403
    assert (await c.get("/schedules")).json() == []


async def test_a_failing_occurrence_is_recorded_and_does_not_hold_up_its_batch(env, clock, outbox_events):
    from content.models import Schedule

    c = env
    good = await make_schedule(c, rrule=None, starts_at=(c.t0 + timedelta(minutes=1)).isoformat(), text="好的")
    bad = await make_schedule(c, rrule=None, starts_at=(c.t0 + timedelta(minutes=1)).isoformat(), text="坏的")
    async with c.content.app.state.runtime.session_maker() as session, session.begin():
        schedule = await session.get(Schedule, bad["id"])
        schedule.payload = {"audience": {"kind": "community"}}  # its text is gone: the action raises

    clock.set(c.t0 + timedelta(minutes=1, seconds=1))
    result = await c.tick()
    assert (result.fired, result.failed) == (1, 1)
    (failed,) = await occurrences(c, bad["id"])
    assert (failed["status"], failed["skip_reason"]) == ("failed", "failed") and "KeyError" in failed["detail"]
    assert [o["status"] for o in await occurrences(c, good["id"])] == ["fired"]
    assert [b.text for b in await broadcasts(c)] == ["好的"]
    assert [e["data"]["reason"] for e in await outbox_events(c.content, "occurrence.skipped")] == ["failed"]
