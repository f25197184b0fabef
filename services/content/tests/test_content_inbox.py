"""Content's inbox: an event delivered twice has its effect once (at-least-once in, exactly-once out)."""

from __future__ import annotations

from sqlalchemy import update

from membership.models import outbox_table as membership_outbox
from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.envelope import Envelope
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS

CONSUMED = "qunzhu_content_events_consumed_total"
LABELS = {"topic": MEMBERSHIP_EVENTS, "type": "community.created"}


async def _created_and_copied(membership, content, community_body, copy_of, eventually) -> tuple[str, dict]:
    platform = {"X-Actor-Id": "platform-operator"}  # creates communities for the owner it names
    created = await membership.client.post("/communities", json=community_body(), headers=platform)
    community_id = created.json()["id"]
    copy = await eventually(lambda: copy_of(content, community_id), what="content's copy")
    await eventually(
        lambda: _equals(content.metric(CONSUMED, outcome="processed", **LABELS), 1), what="processed once"
    )
    return community_id, copy


async def test_the_same_record_published_again_is_skipped_as_a_duplicate(
    bus, membership, content, community_body, copy_of, eventually, tables
):
    community_id, copy = await _created_and_copied(membership, content, community_body, copy_of, eventually)
    (original,) = await bus.read_all(MEMBERSHIP_EVENTS)

    # The very same bytes, twice more (a producer retry, a replayed batch…).
    again = OutgoingRecord(topic=original.topic, key=original.key, value=original.value)
    await bus.publish([again])
    await bus.publish([again])

    await eventually(
        lambda: _equals(content.metric(CONSUMED, outcome="duplicate", **LABELS), 2), what="two duplicates"
    )
    assert await content.metric(CONSUMED, outcome="processed", **LABELS) == 1
    assert await copy_of(content, community_id) == copy  # not rewritten (same synced_at)
    assert await content.count(tables["community_copy"]) == 1
    assert await content.count(tables["inbox"]) == 1


async def test_a_relay_crash_between_publish_and_mark_is_harmless(
    bus, membership, content, community_body, copy_of, eventually, tables
):
    community_id, copy = await _created_and_copied(membership, content, community_body, copy_of, eventually)

    # The relay published but died before marking the row: on restart it publishes the row again.
    runtime = membership.app.state.runtime
    async with runtime.session_maker() as session, session.begin():
        await session.execute(update(membership_outbox).values(published_at=None))
    await runtime.relay.drain()

    records = await bus.read_all(MEMBERSHIP_EVENTS)
    assert len(records) == 2
    assert len({Envelope.from_bytes(r.value).id for r in records}) == 1  # one event, two deliveries
    await eventually(
        lambda: _equals(content.metric(CONSUMED, outcome="duplicate", **LABELS), 1), what="the duplicate"
    )
    assert await content.metric(CONSUMED, outcome="processed", **LABELS) == 1
    assert await copy_of(content, community_id) == copy
    assert await content.count(tables["community_copy"]) == 1


async def _equals(value_coro, expected: float) -> bool:
    return await value_coro == expected
