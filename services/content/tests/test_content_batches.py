"""Records waiting on a partition are applied in one transaction per batch — with the same
exactly-once effects, duplicates skipped and poison dead-lettered as one by one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from test_content_dead_letters import good_event, missing_fields_event

from conftest import member_event, publish_event  # same folder, on sys.path
from content.models import CommunityMember
from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS, dlq_topic


async def test_a_backlog_is_applied_in_batches_exactly_once(bus, start_content, copy_of, eventually):
    ids = [f"c-batch-{i:03d}" for i in range(120)]
    records = [OutgoingRecord(MEMBERSHIP_EVENTS, cid, good_event(cid)) for cid in ids]
    # The same records again (a redelivery) and one poison among them, all before content starts,
    # so content's first fetch of each partition holds a long mixed batch.
    records[60:60] = [OutgoingRecord(MEMBERSHIP_EVENTS, "c-batch-poison", missing_fields_event("c-batch-poison"))]
    records += records[:5]
    await bus.publish(records)

    async with start_content() as content:
        async def processed() -> float:
            return await content.metric(
                "qunzhu_content_events_consumed_total", type="community.created", outcome="processed"
            )

        await eventually(lambda: _equals(processed, 120), within=20, what="120 events processed")
        await eventually(
            lambda: _equals(lambda: content.metric(
                "qunzhu_content_events_consumed_total", type="community.created", outcome="duplicate"), 5),
            what="the 5 repeats skipped",
        )
        for cid in (ids[0], ids[59], ids[60], ids[-1]):
            assert await copy_of(content, cid) is not None
        dead = await bus.read_all(dlq_topic(MEMBERSHIP_EVENTS))
        assert [r.key for r in dead] == ["c-batch-poison"]
        assert await processed() == 120  # nothing applied twice after the batch fell back


async def _equals(probe, expected: float) -> bool:
    return await probe() == expected


async def test_a_poison_in_the_outbox_s_own_format_is_dead_lettered_from_its_batch(
    bus, start_content, copy_of, eventually
):
    """Decoded on the fast path (the typed envelope, one call), a bad payload still goes to the DLQ as
    an invalid payload, and the good records around it are applied once."""
    ids = [f"c-fast-{i:02d}" for i in range(30)]
    poison = good_event("c-fast-poison").replace(b'"positioning":"p"', b'"positioning":""')
    assert poison != good_event("c-fast-poison")
    records = [OutgoingRecord(MEMBERSHIP_EVENTS, cid, good_event(cid)) for cid in ids]
    records[15:15] = [OutgoingRecord(MEMBERSHIP_EVENTS, "c-fast-poison", poison)]
    await bus.publish(records)

    async with start_content() as content:
        await eventually(lambda: _equals(lambda: content.metric(
            "qunzhu_content_events_consumed_total", type="community.created", outcome="processed"), 30),
            within=20, what="30 events processed")
        dead = await eventually(lambda: bus.read_all(dlq_topic(MEMBERSHIP_EVENTS)), what="the dead letter")
        assert [r.value for r in dead] == [poison]
        assert "invalid payload" in dead[0].header("x-dlq-error")
        assert await copy_of(content, "c-fast-poison") is None
        assert await copy_of(content, ids[-1]) is not None


async def test_member_events_after_a_community_created_in_the_same_batch_see_its_owner(
    bus, start_content, eventually, caplog
):
    """community.created writes its rows at the end of the batch; a member.* event for the owner later in
    the same batch still finds the owner row (and never loses to it, nor overwrites it with older news),
    within the batch's one transaction (no fall-back to one by one)."""
    caplog.set_level(logging.INFO, logger="qunzhu_common.bus.delivery")
    for cid, role, hour in (("c-own", "admin", 13), ("c-old", "member", 11)):  # created at 12:00
        await publish_event(bus, type="community.created", community_id=cid, data=CommunityCreated(
            community_id=cid, name="群", positioning="p", owner_id="wecom:o",
            created_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC)))
        await member_event(bus, cid, "wecom:o", role=role, at=datetime(2026, 11, 26, hour, 0, tzinfo=UTC))

    async with start_content() as content:
        for type_ in ("community.created", "member.activated"):
            await eventually(lambda t=type_: _equals(lambda: content.metric(
                "qunzhu_content_events_consumed_total", type=t, outcome="processed"), 2), within=20, what=type_)
        async with content.app.state.runtime.session_maker() as session:
            rows = dict((await session.execute(
                select(CommunityMember.community_id, CommunityMember.role).where(CommunityMember.member_id == "wecom:o")
            )).all())
    assert rows == {"c-own": "admin", "c-old": "owner"}
    assert not [r.message for r in caplog.records if "one by one" in r.getMessage()]
