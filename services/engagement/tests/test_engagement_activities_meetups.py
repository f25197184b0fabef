"""Part 6: offline meetups — registration (接龙 or API), waitlist promotion, reminders, one-time codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from engagement.models import Meetup
from qunzhu_common.events.contracts.chat import ChatCommandIssued

GROUP = "telegram:-100"
A, B, C, D = "telegram:1", "telegram:2", "telegram:3", "telegram:4"


async def setup(engagement) -> tuple[str, dict]:
    cid = await engagement.community()
    for person in (A, B, C, D):
        await engagement.member(cid, person)
    await engagement.client.post(f"/communities/{cid}/rules", json={
        "rules": {"points": {"signup_chain": 1}}, "effective_from": "2020-01-01T00:00:00Z"})
    starts = datetime.now(UTC) + timedelta(hours=20)
    response = await engagement.client.post(f"/communities/{cid}/meetups", json={
        "title": "北京线下聚会", "venue": "国贸某咖啡馆", "group_id": GROUP, "capacity": 2,
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=3)).isoformat()})
    assert response.status_code == 201, response.text
    return cid, response.json()


async def start_now(engagement, meetup_id: str) -> None:
    now = datetime.now(UTC)
    async with engagement.runtime.session_maker() as session, session.begin():
        await session.execute(update(Meetup).where(Meetup.id == meetup_id)
                              .values(starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=2)))


async def test_register_waitlist_promotion_codes_and_one_time_check_in(engagement):
    cid, meetup = await setup(engagement)
    url = f"/communities/{cid}/meetups/{meetup['id']}"
    announced = [e.data["text"] for e in await engagement.outbox_events("chat.action.requested")]
    assert "接龙 北京线下聚会" in announced[0] and "国贸某咖啡馆" in announced[0]

    assert (await engagement.client.post(f"{url}/registrations", json={"person_id": A})).status_code == 201
    assert (await engagement.client.post(f"{url}/registrations", json={"person_id": B})).status_code == 201
    # C registers through the 接龙 in chat: waitlisted (capacity 2)
    await engagement.feed("chat.command.issued", ChatCommandIssued(
        platform="telegram", group_id=GROUP, delivery_id="mc1", message_id="mc1", sender_id=C, sender_name="王五",
        command="signup_chain", argument="北京线下聚会\n1. 张三\n2. 李四\n3. 王五", sent_at=datetime.now(UTC),
    ), community_id=cid)
    state = await engagement.get(url)
    assert [x["person_id"] for x in state["registration"]["confirmed"]] == [A, B]
    assert [(x["person_id"], x["line"]) for x in state["registration"]["waitlist"]] == [(C, "王五")]

    waiting = await engagement.client.post(f"{url}/codes", json={"person_id": C})
    assert waiting.status_code == 422 and "waitlist (position 3)" in waiting.json()["detail"]
    code_a = (await engagement.client.post(f"{url}/codes", json={"person_id": A})).json()["code"]
    assert (await engagement.client.post(f"{url}/codes", json={"person_id": A})).json()["code"] == code_a
    code_b = (await engagement.client.post(f"{url}/codes", json={"person_id": B})).json()["code"]
    cancelled = await engagement.client.post(f"{url}/cancellations", json={"person_id": B})
    assert cancelled.json()["promoted"] == [C]
    code_c = (await engagement.client.post(f"{url}/codes", json={"person_id": C})).json()["code"]
    assert len({code_a, code_b, code_c}) == 3

    early = await engagement.client.post(f"{url}/checkins", json={"code": code_a})
    assert early.status_code == 409 and "check-in is open from" in early.json()["detail"]
    await start_now(engagement, meetup["id"])
    ok = await engagement.client.post(f"{url}/checkins", json={"code": code_a.lower()})
    assert ok.status_code == 200 and ok.json()["person_id"] == A and ok.json()["used_at"]
    reused = await engagement.client.post(f"{url}/checkins", json={"code": code_a})
    assert reused.status_code == 409 and "already used" in reused.json()["detail"]
    assert (await engagement.client.post(f"{url}/checkins", json={"code": "ZZZZZZZZ"})).status_code == 422
    gone = await engagement.client.post(f"{url}/checkins", json={"code": code_b})  # B cancelled
    assert gone.status_code == 422 and "not registered" in gone.json()["detail"]

    attendance = await engagement.get(f"{url}/attendance")
    assert [(x["person_id"], x["attended_at"] is not None) for x in attendance] == [(A, True), (C, False)]
    attended = [e.data for e in await engagement.outbox_events("activity.participated")
                if e.data["action"] == "attended"]
    assert [e["person_id"] for e in attended] == [A]
    # registration (signup_chain 1) + attendance (meetup_attended, 10 by default), each under its rule
    ledger = await engagement.get(f"/communities/{cid}/members/{A}/points")
    assert sorted((e["rule_type"], e["points"]) for e in ledger["entries"]) == \
        [("meetup_attended", 10), ("signup_chain", 1)]
    # activity points are ordinary activities: a replay rebuilds exactly the same ledger
    replay = (await engagement.client.post(f"/communities/{cid}/replay")).json()
    assert (replay["equal"], replay["ledger_identical"]) == (True, True)


async def test_concurrent_check_ins_with_one_code_admit_once(engagement):
    cid, meetup = await setup(engagement)
    url = f"/communities/{cid}/meetups/{meetup['id']}"
    await engagement.client.post(f"{url}/registrations", json={"person_id": A})
    code = (await engagement.client.post(f"{url}/codes", json={"person_id": A})).json()["code"]
    await start_now(engagement, meetup["id"])
    responses = await asyncio.gather(*(engagement.client.post(f"{url}/checkins", json={"code": code})
                                       for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]


async def test_reminder_is_posted_once_before_the_start(engagement):
    cid, meetup = await setup(engagement)
    await engagement.client.post(f"/communities/{cid}/meetups/{meetup['id']}/registrations",
                                 json={"person_id": A, "line": "张三"})
    from engagement.activities.timers import run_due

    early = await run_due(engagement.app, now=datetime.now(UTC) - timedelta(hours=5))
    assert early["meetup_reminders"] == 0
    assert (await run_due(engagement.app))["meetup_reminders"] == 1
    assert (await run_due(engagement.app))["meetup_reminders"] == 0
    texts = [e.data["text"] for e in await engagement.outbox_events("chat.action.requested")]
    reminders = [t for t in texts if t.startswith("⏰")]
    assert len(reminders) == 1 and "已报名：张三" in reminders[0]


async def test_bad_meetups_are_refused(engagement):
    cid = await engagement.community()
    now = datetime.now(UTC)
    def span(start: timedelta, end: timedelta) -> dict:
        return {"starts_at": (now + start).isoformat(), "ends_at": (now + end).isoformat()}

    for body in (span(timedelta(hours=2), timedelta(hours=1)),  # ends before it starts
                 span(timedelta(hours=-2), timedelta(hours=1)),  # in the past
                 {"starts_at": "2030-01-01T10:00:00", "ends_at": "2030-01-01T12:00:00"}):  # no time zone
        response = await engagement.client.post(f"/communities/{cid}/meetups", json={
            "title": "x", "venue": "y", "capacity": 5, **body})
        assert response.status_code == 422, response.text
