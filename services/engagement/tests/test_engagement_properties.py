"""Scoring properties (issue 7, part 5): the specification any scorer — live or batch — must keep.

1. Idempotence: an event delivered twice (or more, at any later moment) awards once.
2. Order independence: the totals, levels and daily figures depend on what happened, not on the order the
   events arrived in (nor on duplicates among them), even where caps and cooldowns bind, across the local
   midnight, with a rule version changing mid-history and a member whose membership arrives late.
3. Replay equality: rebuilding from the history reproduces the live state after such a delivery.

Histories are generated; a second engagement instance fed the same envelopes once, in time order, is the
reference. Which of two messages in one cooldown slot gets the point may depend on arrival order (the
ledger says why either way); the totals, levels and daily figures may not.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import Envelope, new_envelope

T0 = datetime(2026, 11, 2, 15, 50, tzinfo=UTC)  # 23:50 in Shanghai: the history crosses local midnight
PEOPLE = [f"telegram:{n}" for n in range(201, 205)]
LATE = PEOPLE[3]  # their membership event is delivered somewhere in the middle
GROUP = "telegram:-100"
RULES = {"daily_caps": {"effective_message": 3, "checkin": 5}, "points": {"effective_message": 2}}
_examples = itertools.count()

TEXTS = {
    "effective": "今天把增长漏斗拆成了三步实验{n}",
    "noise": "早安",
    "share": "这篇讲冷启动的文章很实用，推荐给大家 https://example.com/{n}",
    "bare_link": "https://example.com/{n}",
}

# Replies to the question are left to the example below: their order dependence is a known defect.
item = st.tuples(
    st.sampled_from(["effective", "effective", "noise", "share", "bare_link", "checkin", "homework"]),
    st.sampled_from(PEOPLE),
    st.integers(0, 1200),  # seconds after T0: cooldown slots collide, caps bind, midnight is at +600
)


def _envelopes(cid: str, items: list[tuple[str, str, int]]) -> list[Envelope]:
    """The community, its members (LATE's at the end), then the generated activities, as envelopes."""
    def env(type_: str, data, at: datetime) -> Envelope:
        return new_envelope(type=type_, data=data, source="test", community_id=cid, occurred_at=at)

    out = [env("community.created", CommunityCreated(
        community_id=cid, name="属性", positioning="增长实验", owner_id="telegram:owner", timezone="Asia/Shanghai",
        created_at=T0 - timedelta(days=30)), T0 - timedelta(days=30))]
    for person in PEOPLE[:3]:
        out.append(env("member.activated", MemberChanged(
            community_id=cid, member_id=person, role="member", status="active", joined_at=T0 - timedelta(days=20),
            changed_at=T0 - timedelta(days=20)), T0 - timedelta(days=20)))
    out.append(env("chat.command.issued", ChatCommandIssued(
        platform="telegram", group_id=GROUP, delivery_id="q", message_id="q1", sender_id=PEOPLE[0],
        command="question", argument="冷启动怎么做？", sent_at=T0), T0))
    for n, (kind, person, offset) in enumerate(items):
        at = T0 + timedelta(seconds=offset)
        if kind in ("checkin", "homework"):
            out.append(env("chat.command.issued", ChatCommandIssued(
                platform="telegram", group_id=GROUP, delivery_id=f"d{n}", message_id=f"m{n}", sender_id=person,
                command=kind, argument="第一周作业", sent_at=at), at))
            continue
        fields = {}
        if kind == "reply":
            fields = {"reply_to_message_id": "q1", "reply_to_sender_id": PEOPLE[0]}
        text = TEXTS.get(kind, "我的回答：先找到最小可行的人群{n}").format(n=n)
        links = [text.split()[-1]] if "https://" in text else []
        out.append(env("chat.message.posted", ChatMessagePosted(
            platform="telegram", group_id=GROUP, delivery_id=f"d{n}", message_id=f"m{n}", sender_id=person,
            text=text, sent_at=at, links=links, **fields), at))
    out.append(env("member.joined", MemberChanged(
        community_id=cid, member_id=LATE, role="member", status="active", joined_at=T0 + timedelta(seconds=300),
        changed_at=T0 + timedelta(seconds=300)), T0 + timedelta(seconds=300)))
    return out


async def _set_rules(driver, cid: str, effective_from: datetime = T0 + timedelta(minutes=10)) -> None:
    """A rule version (by default from the local midnight in the history's middle), set before any activity."""
    response = await driver.client.post(f"/communities/{cid}/rules", json={
        "effective_from": effective_from.isoformat(), "rules": RULES})
    assert response.status_code == 201, response.text


async def _state(driver, cid: str) -> dict:
    from engagement.scoring.replay import snapshot

    async with driver.runtime.session_maker() as session:
        snap = await snapshot(session, community_id=cid)
    return {"scores": {p: v[:2] for p, v in snap["scores"].items()}, "daily": snap["daily"]}


async def _totals_both_ways(engagement, make_engagement, items, *, rules_from: datetime) -> tuple[dict, dict]:
    """Totals with the activities in time order and reversed (members known first): a minimal reordering."""
    import uuid

    cid = str(uuid.uuid4())
    envelopes = _envelopes(cid, items)
    results = []
    members, activities = envelopes[1:4], envelopes[4:]
    for name, order in (("forward", members + activities), ("reverse", members + activities[::-1])):
        async with make_engagement(f"{name}-{next(_examples)}", run_consumers=False) as driver:
            await driver.deliver(envelopes[0])
            await _set_rules(driver, cid, rules_from)
            for envelope in order:
                await driver.deliver(envelope)
            results.append((await _state(driver, cid))["scores"])
    return results[0], results[1]


@pytest.mark.xfail(strict=True, reason="reported: an answer that arrives before its question scores as a plain "
                   "message and is never re-scored (6 points in order, 1 reversed)")
async def test_an_answer_arriving_before_its_question_scores_the_same(engagement, make_engagement):
    forward, reverse = await _totals_both_ways(engagement, make_engagement, [("reply", PEOPLE[1], 0)],
                                               rules_from=T0 + timedelta(minutes=10))
    assert forward == reverse


@pytest.mark.xfail(strict=True, reason="reported: with a rule version starting mid-day, the day's cap counts "
                   "the points in arrival order (3 in order, 4 reversed)")
async def test_a_cap_across_a_mid_day_rule_change_does_not_depend_on_order(engagement, make_engagement):
    items = [("effective", PEOPLE[0], 0), ("effective", PEOPLE[0], 204), ("effective", PEOPLE[0], 316)]
    forward, reverse = await _totals_both_ways(engagement, make_engagement, items,
                                               rules_from=T0 + timedelta(minutes=5))
    assert forward == reverse


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(item, min_size=1, max_size=30), data=st.data())
async def test_shuffled_duplicated_delivery_equals_one_ordered_delivery_and_replays_equal(
    engagement, make_engagement, items, data
):
    import uuid

    cid = str(uuid.uuid4())
    envelopes = _envelopes(cid, items)
    community, rest = envelopes[0], envelopes[1:]
    # Each event arrives 1–3 times, all copies shuffled together (community.created first: it names the zone).
    copies = [e for e in rest for _ in range(data.draw(st.integers(1, 3), label="copies"))]
    plan = [community, *data.draw(st.permutations(copies), label="arrival order")]

    async with make_engagement(f"reference-{next(_examples)}", run_consumers=False) as reference:
        await reference.deliver(community)
        await _set_rules(reference, cid)
        for envelope in sorted(rest, key=lambda e: (e.occurred_at, e.type != "member.activated")):
            await reference.deliver(envelope)
        expected = await _state(reference, cid)

    await engagement.deliver(plan[0])
    await _set_rules(engagement, cid)
    for envelope in plan[1:]:
        await engagement.deliver(envelope)
    got = await _state(engagement, cid)

    assert got["scores"] == expected["scores"], "totals and levels depend on arrival order or duplicates"
    assert got["daily"] == expected["daily"], "daily figures depend on arrival order or duplicates"
    replay = (await engagement.client.post(f"/communities/{cid}/replay")).json()
    assert (replay["equal"], replay["ledger_identical"], replay["differences"]) == (True, True, [])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["effective", "share", "checkin", "homework", "reply"]), times=st.integers(2, 4),
       later=st.lists(item, max_size=5))
async def test_an_event_delivered_again_later_awards_once(engagement, kind, times, later):
    import uuid

    from engagement.scoring.replay import ledger_rows

    cid = str(uuid.uuid4())
    envelopes = _envelopes(cid, [(kind, PEOPLE[1], 30), *later])
    target = envelopes[5]  # the community, three members, the question, then our event
    for envelope in envelopes:
        await engagement.deliver(envelope)
    async with engagement.runtime.session_maker() as session:
        once = await ledger_rows(session, community_id=cid)
    assert any(row[0] == str(target.id) for row in once) or kind == "reply", "the event scored nothing"
    for _ in range(times - 1):
        for envelope in [*envelopes[6:], target]:  # other copies in between: not simply the next delivery
            await engagement.deliver(envelope)
    async with engagement.runtime.session_maker() as session:
        assert await ledger_rows(session, community_id=cid) == once, "a redelivered event changed the ledger"
