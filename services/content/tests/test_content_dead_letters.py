"""Broken records on membership.events.v1 go to its dead-letter topic and never hold up good ones."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS, dlq_topic

DLQ = dlq_topic(MEMBERSHIP_EVENTS)


def good_event(community_id: str, name: str = "好群") -> bytes:
    return new_envelope(
        type="community.created",
        source="membership",
        community_id=community_id,
        data=CommunityCreated(
            community_id=community_id,
            name=name,
            positioning="p",
            owner_id="o",
            created_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        ),
    ).to_bytes()


def missing_fields_event(community_id: str) -> bytes:
    """A well-formed envelope of a known type whose data lacks required fields."""
    wire = json.loads(good_event(community_id))
    wire["id"] = str(uuid.uuid4())
    wire["data"] = {"community_id": community_id}
    return json.dumps(wire).encode()


async def test_broken_records_are_dead_lettered_and_later_records_still_processed(
    bus, membership, content, community_body, copy_of, eventually
):
    broken = missing_fields_event("c-broken")
    # Each poison shares its key (so its partition) with the good record published right after it.
    await bus.publish(
        [
            OutgoingRecord(MEMBERSHIP_EVENTS, "c-broken", broken),
            OutgoingRecord(MEMBERSHIP_EVENTS, "c-broken", good_event("c-broken", "修好了")),
            OutgoingRecord(MEMBERSHIP_EVENTS, "c-garbage", b"\x00not json{"),
            OutgoingRecord(MEMBERSHIP_EVENTS, "c-garbage", good_event("c-garbage")),
        ]
    )
    platform = {"X-Actor-Id": "platform-operator"}  # creates communities for the owner it names
    created = (await membership.client.post("/communities", json=community_body(), headers=platform)).json()["id"]

    for community_id in ("c-broken", "c-garbage", created):
        await eventually(lambda c=community_id: copy_of(content, c), what=f"copy of {community_id}")
    assert (await copy_of(content, "c-broken"))["name"] == "修好了"

    dead = await eventually(lambda: _at_least(bus, DLQ, 2), what="two dead letters")
    assert sorted(r.value for r in dead) == sorted([broken, b"\x00not json{"])
    for letter in dead:
        assert letter.header("x-dlq-original-topic") == MEMBERSHIP_EVENTS
        assert letter.header("x-dlq-consumer-group") == "content"
        assert letter.header("x-dlq-error-type") == "InvalidEvent"
        assert letter.header("x-dlq-attempts") == "1"  # invalid records are not retried
    by_key = {r.key: r for r in dead}
    assert "invalid payload" in by_key["c-broken"].header("x-dlq-error")
    assert "invalid envelope" in by_key["c-garbage"].header("x-dlq-error")

    metrics = (await content.client.get("/metrics")).text
    assert 'qunzhu_content_dlq_records_total{topic="membership.events.v1"} 2.0' in metrics


async def _at_least(bus, topic: str, n: int):
    records = await bus.read_all(topic)
    return records if len(records) >= n else None
