"""chat.message.recalled (#17): a withdrawn message no longer counts — the points it earned are reversed in the
ledger exactly once, it drops out of the counts, and a rebuild from the history agrees."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from conftest import GROUP, T0
from engagement.models import Activity, PointsLedger
from engagement.scoring.replay import rebuild, snapshot
from qunzhu_common.events.contracts.chat import ChatMessageRecalled, ChatReactionAdded

A, B = "telegram:1", "telegram:2"


def recall(message_id: str, delivery: str, operator: str | None = A) -> ChatMessageRecalled:
    return ChatMessageRecalled(platform="telegram", group_id=GROUP, delivery_id=delivery, message_id=message_id,
                               sender_id=A, operator_id=operator, recalled_at=T0 + timedelta(minutes=5))


async def test_a_recalled_check_in_gives_back_exactly_what_it_earned_once(engagement):
    cid = await engagement.community()
    for person in (A, B):
        await engagement.member(cid, person)
    await engagement.command(cid, A, "checkin", T0, argument="第3天", message_id="m-checkin")
    await engagement.message(cid, A, "今天读完了第三章，收获很大，明天继续", T0 + timedelta(minutes=1),
                             message_id="m-keep")
    await engagement.feed("chat.reaction.added", ChatReactionAdded(
        platform="telegram", group_id=GROUP, delivery_id="r1", message_id="m-checkin", reactor_id=B,
        target_sender_id=A, emoji="👍", reacted_at=T0 + timedelta(minutes=2)), community_id=cid)
    before = await engagement.points(cid, A)
    async with engagement.runtime.session_maker() as session:
        earned = (await session.execute(select(Activity.points).where(
            Activity.community_id == cid, Activity.message_id == "m-checkin", Activity.kind == "checkin",
        ))).scalar_one()
    assert earned > 0

    await engagement.feed("chat.message.recalled", recall("m-checkin", "recall-1"), community_id=cid)
    await engagement.feed("chat.message.recalled", recall("m-checkin", "recall-2", operator=B), community_id=cid)

    assert await engagement.points(cid, A) == before - earned  # once, though recalled twice
    async with engagement.runtime.session_maker() as session:
        rows = {(a.kind, a.message_id): a.status for a in (await session.execute(
            select(Activity).where(Activity.community_id == cid, Activity.person_id == A))).scalars()}
        reversals = (await session.execute(select(PointsLedger.points, PointsLedger.reason).where(
            PointsLedger.community_id == cid, PointsLedger.kind == "reversal"))).all()
    assert rows[("checkin", "m-checkin")] == "recalled"
    assert rows[("message", "m-keep")] == "scored" and rows[("reaction", "m-checkin")] == "scored"
    assert [(p, r) for p, r in reversals] == [(-earned, "the message was recalled")]

    async with engagement.runtime.session_maker() as session, session.begin():
        live = await snapshot(session, community_id=cid)
        await rebuild(session, community_id=cid)
        assert await snapshot(session, community_id=cid) == live  # the recalled check-in is not scored again


async def test_a_message_recalled_in_the_same_batch_or_before_it_is_scored_never_counts(engagement):
    cid = await engagement.community()
    await engagement.message(cid, A, "还不认识发送者的消息，稍后撤回", T0, message_id="m-early")  # A: not a member yet
    await engagement.feed("chat.message.recalled", recall("m-early", "recall-3"), community_id=cid)
    await engagement.member(cid, A)  # pending activities are scored now: the recalled one is not

    assert await engagement.points(cid, A) == 0
    async with engagement.runtime.session_maker() as session:
        (status,) = (await session.execute(select(Activity.status).where(
            Activity.community_id == cid, Activity.message_id == "m-early"))).scalars().all()
    assert status == "recalled"


async def test_a_recalled_message_leaves_the_key_people_graph(engagement):
    from engagement.jobs.keypeople import interaction_edges

    cid = await engagement.community()
    for person in (A, B):
        await engagement.member(cid, person)
    await engagement.message(cid, A, "谢谢 @bob 的分享", T0, message_id="m-thanks", mentions=[B])
    await engagement.feed("chat.message.recalled", recall("m-thanks", "recall-4"), community_id=cid)

    async with engagement.runtime.session_maker() as session:
        edges = await interaction_edges(session, community_id=cid, start=T0 - timedelta(days=1),
                                        end=T0 + timedelta(days=1))
    assert edges == []


async def test_a_recalled_homework_submission_gives_back_its_points(engagement):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    cid = await engagement.community(owner="telegram:owner")
    await engagement.member(cid, A)
    created = await engagement.client.post(f"/communities/{cid}/assignments", json={
        "title": "第3周：写一份增长实验计划", "code": "W3", "created_by": "telegram:owner"})
    assert created.status_code == 201, created.text
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    await engagement.command(cid, A, "homework", now, argument="W3 我的实验：优化注册页文案", message_id="m-hw")
    earned = await engagement.points(cid, A)
    assert earned > 0

    await engagement.feed("chat.message.recalled", recall("m-hw", "recall-5"), community_id=cid)

    assert await engagement.points(cid, A) == 0


async def test_a_recalled_message_is_no_activity_in_the_groups_health(engagement):
    cid = await engagement.community()
    for person in (A, B):
        await engagement.member(cid, person)
    await engagement.message(cid, A, "今天读完了第三章，收获很大，明天继续", T0, message_id="m-1")
    await engagement.message(cid, B, "发错群了，马上撤回这条长长的消息", T0 + timedelta(minutes=1), message_id="m-2")
    as_of = (T0 + timedelta(days=1)).isoformat()
    [before] = await engagement.get(f"/communities/{cid}/groups/health", as_of=as_of)

    await engagement.feed("chat.message.recalled", recall("m-2", "recall-h", operator=B), community_id=cid)

    [after] = await engagement.get(f"/communities/{cid}/groups/health", as_of=as_of)
    assert before["messages_7d"] == 2 and after["messages_7d"] == 1
