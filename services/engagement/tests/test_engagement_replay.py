"""Replay (architecture.md): the engagement state rebuilt from the event history equals the live state.

Also the scoring properties behind it (hypothesis): redelivery changes nothing, and the totals do not
depend on the order the activities arrive in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
PEOPLE = [f"telegram:{n}" for n in range(1, 5)]


async def busy_history(engagement, cid: str) -> None:
    """A community's worth of everything: caps, cooldowns, noise, questions, a late member, a rule change."""
    for person in PEOPLE[:3]:
        await engagement.member(cid, person)
    late = PEOPLE[3]
    await engagement.message(cid, late, "入群前就在讨论增长模型了", T0)  # kept until the member is known
    await engagement.command(cid, PEOPLE[0], "question", T0, argument="冷启动怎么做？", message_id="q1")
    for i in range(30):
        person = PEOPLE[i % 3]
        at = T0 + timedelta(seconds=37 * i)
        await engagement.message(cid, person, f"关于冷启动的第{i}个想法", at, reply_to_message_id="q1" if i % 7 == 1
                                 else None, reply_to_sender_id=PEOPLE[0] if i % 7 == 1 else None)
        if i % 4 == 0:
            await engagement.message(cid, person, "早安", at)
        if i % 5 == 0:
            await engagement.command(cid, person, "checkin", at + timedelta(hours=i))
    response = await engagement.client.post(f"/communities/{cid}/rules", json={
        "effective_from": (T0 + timedelta(days=1)).isoformat(),
        "rules": {"points": {"effective_message": 2}, "daily_caps": {"effective_message": 5}},
    })
    assert response.status_code == 201
    await engagement.member(cid, late, type_="member.joined")
    for i in range(12):
        await engagement.message(cid, PEOPLE[i % 4], f"第二天的实验复盘{i}", T0 + timedelta(days=1, minutes=i))


async def test_rebuilding_from_the_history_reproduces_the_live_ledger_exactly(engagement):
    cid = await engagement.community()
    await busy_history(engagement, cid)
    assert await engagement.points(cid, PEOPLE[3]) > 0  # the late member's history was scored

    response = await engagement.client.post(f"/communities/{cid}/replay")
    body = response.json()
    assert response.status_code == 200, body
    assert body["activities"] > 50
    assert (body["equal"], body["ledger_identical"], body["differences"]) == (True, True, [])


async def test_replay_sees_a_live_state_that_drifted(engagement):
    # Guard for the test above: the comparison does notice a difference.
    from engagement.models import MemberScore

    cid = await engagement.community()
    await busy_history(engagement, cid)
    async with engagement.runtime.session_maker() as session, session.begin():
        await session.execute(
            update(MemberScore).where(MemberScore.community_id == cid, MemberScore.person_id == PEOPLE[1])
            .values(total_points=MemberScore.total_points + 7)
        )
    body = (await engagement.client.post(f"/communities/{cid}/replay")).json()
    assert body["equal"] is False
    assert any(PEOPLE[1] in d and d.startswith("scores") for d in body["differences"])

    repaired = (await engagement.client.post(f"/communities/{cid}/replay", params={"apply": "true"})).json()
    assert repaired["applied"] is True
    assert (await engagement.client.post(f"/communities/{cid}/replay")).json()["equal"] is True


async def test_a_second_instance_fed_the_same_events_reaches_the_same_state(engagement, make_engagement):
    from engagement.scoring.replay import ledger_rows, snapshot

    cid = await engagement.community()
    await busy_history(engagement, cid)
    async with make_engagement("fresh", run_consumers=False) as fresh:
        rule_versions = (await engagement.get(f"/communities/{cid}/rules"))["versions"]
        for envelope in engagement.delivered:
            if envelope.type == "member.joined":  # the rule change came (through the API) just before
                for version in rule_versions:
                    await fresh.client.post(f"/communities/{cid}/rules", json={
                        "effective_from": version["effective_from"], "rules": version["rules"]})
            await fresh.deliver(envelope)
        async with engagement.runtime.session_maker() as live, fresh.runtime.session_maker() as rebuilt:
            assert await snapshot(rebuilt, community_id=cid) == await snapshot(live, community_id=cid)
            assert await ledger_rows(rebuilt, community_id=cid) == await ledger_rows(live, community_id=cid)


async def test_recompute_applies_a_past_rule_change_and_replay_still_agrees(engagement):
    cid = await engagement.community()
    a = PEOPLE[0]
    await engagement.member(cid, a)
    for i in range(3):
        await engagement.message(cid, a, f"增长实验第{i}轮的数据", T0 + timedelta(minutes=i))
    await engagement.command(cid, a, "checkin", T0)
    assert await engagement.points(cid, a) == 8

    response = await engagement.client.post(f"/communities/{cid}/rules", json={
        "effective_from": (T0 + timedelta(minutes=1)).isoformat(), "recompute": True,
        "rules": {"points": {"effective_message": 3, "checkin": 10}},
    })
    assert response.status_code == 201, response.text
    assert response.json()["recomputed_activities"] == 2  # the 2nd and 3rd message
    assert await engagement.points(cid, a) == 1 + 3 + 3 + 5  # the check-in (at T0) keeps v0's 5
    entries = (await engagement.get(f"/communities/{cid}/members/{a}/points"))["entries"]
    assert sorted((e["rule"], e["kind"], e["points"]) for e in entries) == sorted([
        ("effective_message@v0", "award", 1), ("checkin@v0", "award", 5),
        ("effective_message@v0", "award", 1), ("effective_message@v0", "reversal", -1),
        ("effective_message@v0", "award", 1), ("effective_message@v0", "reversal", -1),
        ("effective_message@v1", "award", 3), ("effective_message@v1", "award", 3),
    ])
    body = (await engagement.client.post(f"/communities/{cid}/replay")).json()
    assert body["equal"] is True, body["differences"]


# -- properties ---------------------------------------------------------------------------------

activity = st.tuples(
    st.sampled_from(["checkin", "homework", "message", "message", "message"]),
    st.sampled_from(PEOPLE[:3]),
    # Seconds after T0 on two days, within a few minutes: cooldown slots collide and caps bind.
    st.builds(lambda day, second: day * 86400 + second, st.integers(0, 1), st.integers(0, 300)),
)


async def _feed(engagement, cid: str, items) -> None:
    for n, (kind, person, offset) in enumerate(items):
        at = T0 + timedelta(seconds=offset)
        if kind == "message":
            await engagement.message(cid, person, f"第{n}条独立的实验笔记{offset}", at)
        else:
            await engagement.command(cid, person, kind, at, argument="第一周作业")


async def _figures(engagement, cid: str):
    from engagement.scoring.replay import snapshot

    async with engagement.runtime.session_maker() as session:
        snap = await snapshot(session, community_id=cid)
    return {p: v[:2] for p, v in snap["scores"].items()}, snap["daily"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(activity, min_size=1, max_size=40), data=st.data())
async def test_totals_do_not_depend_on_arrival_order(engagement, items, data):
    shuffled = data.draw(st.permutations(items))
    # Cap small enough to bind: order-independence must hold exactly where caps cut in.
    rules = {"daily_caps": {"effective_message": 2, "checkin": 5, "homework_submitted": 25}}
    totals = []
    for order in (items, shuffled):
        cid = await engagement.community()
        await engagement.client.post(f"/communities/{cid}/rules", json={
            "effective_from": (T0 - timedelta(days=1)).isoformat(), "rules": rules})
        for person in PEOPLE[:3]:
            await engagement.member(cid, person)
        await _feed(engagement, cid, order)
        totals.append(await _figures(engagement, cid))
    assert totals[0] == totals[1]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(activity, min_size=1, max_size=25))
async def test_redelivering_every_event_changes_nothing(engagement, items):
    cid = await engagement.community()
    for person in PEOPLE[:3]:
        await engagement.member(cid, person)
    start = len(engagement.delivered)
    await _feed(engagement, cid, items)
    once = await _figures(engagement, cid)
    for envelope in list(engagement.delivered[start:]):
        await engagement.deliver(envelope)
    assert await _figures(engagement, cid) == once
