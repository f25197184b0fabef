"""Parts 5–6: check-in challenges with streaks; homework, grades and the top-3 scholarship."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engagement.checkins.service import streaks

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = date(2026, 11, 2)
A, B, C, D = "telegram:1", "telegram:2", "telegram:3", "telegram:4"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(START + timedelta(days=day), time(hour, minute), SHANGHAI)


def test_streaks_count_consecutive_local_days():
    days = [START, START + timedelta(1), START + timedelta(2), START + timedelta(4), START + timedelta(5)]
    assert streaks(days, today=START + timedelta(5)) == (2, 3)
    assert streaks(days, today=START + timedelta(6)) == (2, 3)  # yesterday still keeps it alive
    assert streaks(days, today=START + timedelta(7)) == (0, 3)
    assert streaks([], today=START) == (0, 0)


async def test_a_check_in_challenge_counts_days_in_the_window_and_completes_once(engagement):
    cid = await engagement.community()
    for person in (A, B):
        await engagement.member(cid, person)
    response = await engagement.client.post(f"/communities/{cid}/challenges", json={
        "title": "21天早起挑战", "rules": "05:00–09:00 打卡", "length_days": 3, "starts_on": START.isoformat(),
        "window_start": "05:00:00", "window_end": "09:00:00",
    })
    assert response.status_code == 201, response.text
    challenge = response.json()["id"]

    await engagement.command(cid, A, "checkin", at(0, 6))
    await engagement.command(cid, A, "checkin", at(0, 7))  # same day: one day
    await engagement.command(cid, A, "checkin", at(1, 10))  # outside the window
    await engagement.command(cid, A, "checkin", at(2, 5, 30))
    await engagement.command(cid, A, "checkin", at(3, 8, 59))
    await engagement.command(cid, B, "checkin", at(0, 6))
    await engagement.command(cid, B, "checkin", at(-1, 6))  # before the start

    a = await engagement.get(f"/communities/{cid}/challenges/{challenge}/members/{A}")
    assert (a["days_checked_in"], a["longest_streak"], a["completed"], a["days_needed"]) == (3, 2, True, 0)
    board = await engagement.get(f"/communities/{cid}/challenges/{challenge}/leaderboard")
    assert [(r["person_id"], r["days_checked_in"], r["rank"]) for r in board] == [(A, 3, 1), (B, 1, 2)]
    completed = await engagement.outbox_events("checkin_challenge.completed")
    assert [(e.data["person_id"], e.data["days_checked_in"]) for e in completed] == [(A, 3)]

    await engagement.command(cid, A, "checkin", at(4, 6))
    assert len(await engagement.outbox_events("checkin_challenge.completed")) == 1


async def test_challenge_window_must_be_consistent(engagement):
    cid = await engagement.community()
    response = await engagement.client.post(f"/communities/{cid}/challenges", json={
        "title": "x", "starts_on": START.isoformat(), "window_start": "09:00:00", "window_end": "05:00:00",
    })
    assert response.status_code == 422


async def test_homework_submitted_in_chat_and_api_graded_and_top_three_win_scholarships(engagement):
    cid = await engagement.community(owner="telegram:owner")
    for person in (A, B, C, D):
        await engagement.member(cid, person)
    await engagement.member(cid, "telegram:guest", role="guest")
    created = await engagement.client.post(f"/communities/{cid}/assignments", json={
        "title": "第3周：写一份增长实验计划", "code": "W3", "created_by": "telegram:owner",
    })
    assert created.status_code == 201, created.text
    aid = created.json()["id"]
    now = datetime.now(SHANGHAI)

    await engagement.command(cid, A, "homework", now, argument="W3 我的实验：优化注册页文案")
    await engagement.command(cid, A, "homework", now + timedelta(minutes=1), argument="W3 改了一版")  # resubmission
    await engagement.command(cid, B, "homework", now + timedelta(minutes=2), argument="用邀请码做裂变")  # newest open
    for person in (C, D):
        response = await engagement.client.post(f"/communities/{cid}/assignments/{aid}/submissions",
                                                json={"person_id": person, "content": f"{person} 的作业"})
        assert response.status_code == 201, response.text
    submissions = {s["person_id"]: s for s in await engagement.get(f"/communities/{cid}/assignments/{aid}/submissions")}
    assert set(submissions) == {A, B, C, D} and submissions[A]["content"] == "改了一版"
    assert await engagement.points(cid, A) == 10  # once per assignment

    grades = {A: 4, B: 5, C: 4, D: 2}
    for person, value in grades.items():
        response = await engagement.client.post(
            f"/communities/{cid}/assignments/{aid}/submissions/{submissions[person]['id']}/grade",
            json={"grade": value, "graded_by": "telegram:guest"},
        )
        assert response.status_code == 200, response.text
    assert await engagement.points(cid, B) == 10 + 6  # grade bonus for 5
    entries = (await engagement.get(f"/communities/{cid}/members/{B}/points"))["entries"]
    assert {e["rule"] for e in entries} == {"homework_submitted@v0", "homework_grade_bonus@v0"}

    regrade = await engagement.client.post(
        f"/communities/{cid}/assignments/{aid}/submissions/{submissions[D]['id']}/grade",
        json={"grade": 5, "graded_by": "telegram:guest"})
    assert regrade.status_code == 409
    by_member = await engagement.client.post(
        f"/communities/{cid}/assignments/{aid}/submissions/{submissions[D]['id']}/grade",
        json={"grade": 5, "graded_by": C})
    assert by_member.status_code == 403

    top = (await engagement.client.post(f"/communities/{cid}/assignments/{aid}/scholarships")).json()
    # B (5), then A and C (4) in submission order.
    assert [(s["person_id"], s["scholarship_rank"]) for s in top] == [(B, 1), (A, 2), (C, 3)]
    events = await engagement.outbox_events("scholarship.awarded")
    assert [(e.data["person_id"], e.data["rank"], e.data["grade"]) for e in events] == [(B, 1, 5), (A, 2, 4), (C, 3, 4)]
    again = await engagement.client.post(f"/communities/{cid}/assignments/{aid}/scholarships")
    assert again.status_code == 409
