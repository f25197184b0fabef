"""The batch scorer: a consumed batch scored together gives exactly what one-at-a-time scoring gives.

The consumer hands the chat events of a partition batch to the scorer at the end of the transaction
(qunzhu_common.unit_of_work); caps, cooldown slots, repeats, answers and strikes are then decided in
memory from one read of the earlier history. These tests feed the same event history to two apps —
one event per transaction, and whole runs of a topic per transaction — and compare everything a
member or an operator can see, plus the events announced.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engagement.models import Activity, NewActivity
from engagement.scoring.replay import ledger_rows, snapshot
from qunzhu_common.bus.base import Record
from qunzhu_common.events.contracts.chat import ChatCommandIssued, ChatMessagePosted
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import Envelope, new_envelope

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
GROUP = "telegram:-100"
PEOPLE = [f"telegram:{n}" for n in range(1, 6)]


def history(cid: str) -> list[Envelope]:
    """Membership and chat events interleaved: caps, cooldown slots, repeats, noise, links, ads, a question
    and its answers, check-ins, a member known only halfway through, and a second day."""
    ids = itertools.count(1)
    events: list[Envelope] = []

    def add(type_: str, data, at: datetime) -> None:  # noqa: ANN001
        events.append(new_envelope(type=type_, data=data, source="test", community_id=cid, occurred_at=at))

    def member(person: str, at: datetime, type_: str = "member.activated") -> None:
        add(type_, MemberChanged(community_id=cid, member_id=person, role="member", status="active",
                                 joined_at=at, changed_at=at), at)

    def message(person: str, text: str, at: datetime, **fields) -> None:  # noqa: ANN003
        n = next(ids)
        add("chat.message.posted", ChatMessagePosted(
            platform="telegram", group_id=GROUP, delivery_id=f"d{n}", message_id=fields.pop("message_id", f"m{n}"),
            sender_id=person, text=text, sent_at=at, **fields), at)

    def command(person: str, name: str, at: datetime, argument: str = "", message_id: str | None = None) -> None:
        n = next(ids)
        add("chat.command.issued", ChatCommandIssued(
            platform="telegram", group_id=GROUP, delivery_id=f"d{n}", message_id=message_id or f"m{n}",
            sender_id=person, command=name, argument=argument, sent_at=at), at)

    add("community.created", CommunityCreated(community_id=cid, name="增长实验室", positioning="增长",
                                              owner_id="telegram:owner", created_at=T0 - timedelta(days=90)), T0)
    for person in PEOPLE[:4]:
        member(person, T0 - timedelta(days=30))
    message(PEOPLE[4], "入群前就在讨论增长模型了", T0)  # kept pending until the member is known
    command(PEOPLE[0], "question", T0, argument="冷启动怎么做？", message_id="q1")
    for i in range(120):  # 30 messages each, 28 s apart: cooldown slots and the daily cap of 20 both bite
        person = PEOPLE[i % 4]
        at = T0 + timedelta(seconds=7 * i)
        answer = {"reply_to_message_id": "q1", "reply_to_sender_id": PEOPLE[0]} if i % 6 == 1 else {}
        message(person, f"关于冷启动的第{i % 9}个想法：先做种子用户", at, **answer)  # repeats once i ≥ 9
        if i % 4 == 0:
            message(person, "早安", at)
        if i % 10 == 3:
            message(person, "https://example.com/a", at)  # bare link: a strike
        if i % 10 == 7:
            message(person, "推荐这篇增长文章，讲冷启动讲得很透 https://example.com/b", at)
        if i % 5 == 0:
            command(person, "checkin", at + timedelta(hours=i % 3))
        if i == 60:
            member(PEOPLE[4], at, "member.joined")
    for i in range(20):
        message(PEOPLE[i % 5], f"第二天的实验复盘{i}", T0 + timedelta(days=1, seconds=61 * i))
    return events


def records(events: list[Envelope], registry) -> list[Record]:  # noqa: ANN001
    return [Record(topic=registry.spec_for(e.type, e.version).topic, partition=0, offset=n, key=e.community_id,
                   value=e.to_bytes()) for n, e in enumerate(events)]


async def state(driver, cid: str) -> dict:  # noqa: ANN001
    async with driver.runtime.session_maker() as session:
        ledger = await ledger_rows(session, community_id=cid)
        seen = await snapshot(session, community_id=cid)
        reasons = sorted(tuple(r) for r in await session.execute(
            select(Activity.source_event_id, Activity.kind, Activity.reason).where(Activity.community_id == cid)))
    awarded = sorted((e.data["source_event_id"], e.data["rule_type"], e.data["points"], e.data["total_points"])
                     for e in await driver.outbox_events("points.awarded"))
    levels = sorted((e.data["person_id"], e.data["level"]) for e in await driver.outbox_events("level.reached"))
    warnings = sorted(e.data["action_id"] for e in await driver.outbox_events("chat.action.requested"))
    return {"snapshot": seen, "reasons": reasons, "ledger": sorted(ledger, key=str), "awarded": awarded,
            "levels": levels, "warnings": warnings}


async def test_batches_score_exactly_like_one_event_per_transaction(engagement, make_engagement):
    cid = str(uuid.uuid4())
    events = history(cid)
    for record in records(events, engagement.runtime.registry):
        await engagement.runtime.consumer(record)

    async with make_engagement("batched", run_consumers=False) as batched:
        # As the bus delivers them: runs of one topic, one transaction per run (capped like a fetch).
        for _, run in itertools.groupby(records(events, batched.runtime.registry), key=lambda r: r.topic):
            run = list(run)
            for start in range(0, len(run), 37):
                await batched.runtime.consumer.handle_batch(run[start:start + 37])
        one_by_one, together = await state(engagement, cid), await state(batched, cid)

    assert together["snapshot"]["scores"][PEOPLE[4]][0] > 0, "the pending member was scored"
    assert any(s for *_, s in (v for v in together["snapshot"]["activities"].values())), "strikes happened"
    assert any("cooldown" in reason for *_, reason in together["reasons"]), "cooldown slots bit"
    assert any("daily cap" in reason for *_, reason in together["reasons"]), "a daily cap bit"
    assert together == one_by_one


async def test_a_batch_cut_by_the_hold_budget_scores_exactly_like_one_transaction(engagement, make_engagement):
    """Embedded mode's SQLite: a batch that has held the write connection past `sqlite_consume_hold_s` commits
    what it applied and goes on in a new transaction, its unapplied claims given back (issue #19: a webhook
    waited behind whole consumer batches). With a budget of ~0 every record gets a transaction of its own;
    repeats inside a batch stay duplicates, and the result is the same as one transaction per batch."""
    cid = str(uuid.uuid4())
    events = history(cid)
    async with make_engagement("whole", run_consumers=False, sqlite_consume_hold_s=60) as whole, \
            make_engagement("cut", run_consumers=False, sqlite_consume_hold_s=1e-9) as cut:
        for driver in (whole, cut):
            for _, run in itertools.groupby(records(events, driver.runtime.registry), key=lambda r: r.topic):
                run = list(run)
                for start in range(0, len(run), 37):
                    batch = run[start:start + 37]
                    await driver.runtime.consumer.handle_batch(batch + batch[:3])  # a platform's repeats
        assert await state(cut, cid) == await state(whole, cid)
        async with cut.runtime.session_maker() as session:
            inbox = cut.runtime.spec.inbox_table
            claims = (await session.execute(select(inbox.c.event_id))).scalars().all()
        assert sorted(claims) == sorted({str(e.id) for e in events})  # each event claimed once, none lost


async def test_a_batch_holding_an_event_twice_scores_it_once(engagement):
    cid = str(uuid.uuid4())
    events = history(cid)[:40]
    recs = records(events, engagement.runtime.registry)
    members = [r for r in recs if r.topic != "chat.events.v1"]
    chat = [r for r in recs if r.topic == "chat.events.v1"]
    await engagement.runtime.consumer.handle_batch(members)
    await engagement.runtime.consumer.handle_batch(chat + chat[:10])
    await engagement.runtime.consumer.handle_batch(chat[5:20])
    async with engagement.runtime.session_maker() as session:
        seen = await snapshot(session, community_id=cid)
    sources = [key.split("|")[0] for key in seen["ledger"]]
    assert len(sources) == len(set(sources)) > 10


def test_new_activity_has_the_columns_of_activity():
    # The scorer inserts NewActivity rows into Activity's table field by field.
    columns = {c.name for c in Activity.__table__.columns}  # type: ignore[attr-defined]
    assert {f.name for f in dataclasses.fields(NewActivity)} == columns
