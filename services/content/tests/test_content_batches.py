"""Records waiting on a partition are applied in one transaction per batch — with the same
exactly-once effects, duplicates skipped and poison dead-lettered as one by one."""

from __future__ import annotations

from test_content_dead_letters import good_event, missing_fields_event  # same folder, on sys.path

from qunzhu_common.bus.base import OutgoingRecord
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
