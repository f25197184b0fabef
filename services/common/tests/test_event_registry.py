"""Event envelope and registry: what may be published and consumed, where it goes and with which key."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import MetaData, func, select

from qunzhu_common.context import correlation_id_var
from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.events.registry import EventSpec, InvalidEvent, default_registry
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS
from qunzhu_common.outbox import OutboxWriter

SHANGHAI = timezone(timedelta(hours=8))


def community_created(community_id: str = "c-1", **overrides) -> CommunityCreated:
    values = dict(
        community_id=community_id,
        name="读书会",
        positioning="每周读一本书",
        owner_id="owner-1",
        created_at=datetime(2026, 11, 26, 20, 0, tzinfo=SHANGHAI),
    )
    values.update(overrides)
    return CommunityCreated(**values)


def envelope(**overrides) -> Envelope:
    values = dict(
        id=uuid.uuid4(),
        type="community.created",
        version=1,
        source="membership",
        occurred_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        community_id="c-1",
        correlation_id="req-1",
        data=community_created().model_dump(mode="json"),
    )
    values.update(overrides)
    return Envelope(**values)


def test_route_gives_the_topic_and_the_community_as_key():
    registry = default_registry()
    topic, key = registry.route(
        envelope(community_id="c-42", data=community_created("c-42").model_dump(mode="json"))
    )
    assert (topic, key) == (MEMBERSHIP_EVENTS, "c-42")


@pytest.mark.parametrize(
    ("type_", "version"), [("community.exploded", 1), ("community.created", 2)], ids=["type", "version"]
)
def test_unknown_event_is_invalid(type_, version):
    registry = default_registry()
    unknown = envelope(type=type_, version=version)
    with pytest.raises(InvalidEvent, match="unknown event type"):
        registry.route(unknown)
    with pytest.raises(InvalidEvent, match="unknown event type"):
        registry.parse_payload(unknown)


def test_naive_occurred_at_is_rejected():
    naive = datetime(2026, 11, 26, 12, 0)
    with pytest.raises(ValidationError):
        envelope(occurred_at=naive)
    with pytest.raises(ValidationError):
        new_envelope(
            type="community.created",
            data=community_created(),
            source="membership",
            community_id="c-1",
            occurred_at=naive,
        )
    wire = json.loads(envelope().to_bytes())
    wire["occurred_at"] = "2026-11-26T12:00:00"
    with pytest.raises(InvalidEvent, match="invalid envelope"):
        default_registry().decode(json.dumps(wire).encode())


def test_naive_timestamp_inside_the_payload_is_rejected():
    with pytest.raises(ValidationError):
        community_created(created_at=datetime(2026, 11, 26, 20, 0))
    data = community_created().model_dump(mode="json")
    data["created_at"] = "2026-11-26T20:00:00"
    with pytest.raises(InvalidEvent, match="invalid payload"):
        default_registry().route(envelope(data=data))


@pytest.mark.parametrize(
    "raw",
    [
        b"not json at all",
        b"{}",
        b'{"id": "x"}',
        json.dumps({**json.loads(envelope().to_bytes()), "extra": 1}).encode(),
    ],
    ids=["not-json", "empty", "partial", "unknown-field"],
)
def test_bad_envelopes_are_invalid_events(raw):
    with pytest.raises(InvalidEvent):
        default_registry().decode(raw)


def test_envelope_round_trips_through_bytes():
    original = envelope()
    decoded = default_registry().decode(original.to_bytes())
    assert decoded == original
    payload = default_registry().parse_payload(decoded)
    assert payload == community_created()
    assert payload.created_at.utcoffset() == timedelta(hours=8)


def test_new_envelope_takes_the_correlation_id_in_force():
    token = correlation_id_var.set("req-from-header")
    try:
        env = new_envelope(
            type="community.created", data=community_created(), source="membership", community_id="c-1"
        )
    finally:
        correlation_id_var.reset(token)
    assert env.correlation_id == "req-from-header"
    assert env.occurred_at.tzinfo is not None
    # Outside any request a fresh one is made, never an empty string.
    assert new_envelope(
        type="community.created", data=community_created(), source="membership", community_id="c-1"
    ).correlation_id


def test_a_type_cannot_be_registered_twice():
    registry = default_registry()

    class Other(BaseModel):
        x: int

    with pytest.raises(ValueError, match="already registered"):
        registry.register(
            EventSpec(type="community.created", version=1, topic=MEMBERSHIP_EVENTS, payload=Other)
        )


async def _outbox_rows(session_maker, outbox) -> list:
    async with session_maker() as session:
        return (await session.execute(select(outbox))).all()


async def test_outbox_writer_validates_the_payload_and_writes_nothing_when_bad(sqlite_db):
    metadata = MetaData()
    outbox, _inbox = add_messaging_tables(metadata)
    session_maker = await sqlite_db(metadata)
    writer = OutboxWriter(table=outbox, registry=default_registry(), source="membership")
    bad_data = community_created().model_dump(mode="json")
    del bad_data["name"]

    async with session_maker() as session, session.begin():
        with pytest.raises(InvalidEvent, match="invalid payload"):
            await writer.add(session, envelope(data=bad_data))
        with pytest.raises(InvalidEvent, match="unknown event type"):
            await writer.add(session, envelope(type="community.vanished"))
        assert await session.scalar(select(func.count()).select_from(outbox)) == 0

    assert await _outbox_rows(session_maker, outbox) == []


async def test_outbox_writer_stages_a_valid_event_with_its_topic_and_key(sqlite_db):
    metadata = MetaData()
    outbox, _inbox = add_messaging_tables(metadata)
    session_maker = await sqlite_db(metadata)
    writer = OutboxWriter(table=outbox, registry=default_registry(), source="membership")

    async with session_maker() as session, session.begin():
        env = await writer.emit(
            session, type="community.created", data=community_created("c-9"), community_id="c-9"
        )

    (row,) = await _outbox_rows(session_maker, outbox)
    assert row.event_id == str(env.id)
    assert (row.topic, row.key, row.event_type) == (MEMBERSHIP_EVENTS, "c-9", "community.created")
    assert Envelope.from_bytes(row.payload) == env
    assert env.source == "membership"
    assert row.published_at is None
    assert row.created_at.tzinfo is not None
