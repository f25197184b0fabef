"""One validation per event: built and validated once when published, serialised once, decoded at
consume in one call into the type's typed envelope — with the same results as the generic path."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import MetaData, select

from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import Envelope, EnvelopeHead, encode_envelope, new_envelope
from qunzhu_common.events.registry import EventRegistry, InvalidEvent, default_registry
from qunzhu_common.outbox import OutboxWriter

SHANGHAI = timezone(timedelta(hours=8))
WANTED = {"community.created"}


def created(community_id: str = "c-1", **overrides) -> Envelope:
    values = dict(community_id=community_id, name="读书会", positioning="每周读一本书", owner_id="owner-1",
                  created_at=datetime(2026, 11, 26, 20, 0, tzinfo=SHANGHAI))
    values.update(overrides)
    return new_envelope(type="community.created", data=CommunityCreated(**values), source="membership",
                        community_id=community_id, correlation_id="req-1")


def _generic(registry: EventRegistry, raw: bytes):
    envelope = registry.decode(raw)
    return envelope, registry.parse_payload(envelope)


def test_a_record_written_by_the_outbox_decodes_in_one_call_into_the_typed_envelope():
    registry = default_registry()
    env = created()
    typed, payload = registry.decode_event(env.to_bytes(), WANTED)

    assert type(typed) is registry.envelope_model(registry.spec_for("community.created", 1))
    assert isinstance(typed, EnvelopeHead) and not isinstance(typed, Envelope)
    assert payload is typed.data and isinstance(payload, CommunityCreated)
    generic, generic_payload = _generic(registry, env.to_bytes())
    assert payload == generic_payload == env.payload
    assert payload.created_at.utcoffset() == timedelta(hours=8)
    for name in EnvelopeHead.model_fields:
        assert getattr(typed, name) == getattr(generic, name)


def test_bytes_written_some_other_way_take_the_generic_path_with_the_same_result():
    registry = default_registry()
    env = created()
    spaced = json.dumps(json.loads(env.to_bytes()), ensure_ascii=False, indent=1).encode()
    reordered = json.dumps({"data": env.data, **{k: v for k, v in json.loads(env.to_bytes()).items()
                                                  if k != "data"}}).encode()
    for raw in (spaced, reordered):
        envelope, payload = registry.decode_event(raw, WANTED)
        assert isinstance(envelope, Envelope)
        assert envelope == env and payload == env.payload


def test_a_record_the_typed_envelope_refuses_is_invalid_for_the_generic_reason():
    registry = default_registry()
    good = created().to_bytes()
    assert good.count(b'"positioning":"') == 1
    bad_payload = good.replace(b'"positioning":"', b'"positioning":"' + b"x" * 300)  # over 280
    with pytest.raises(InvalidEvent, match="invalid payload"):
        registry.decode_event(bad_payload, WANTED)
    unknown_version = good.replace(b'"version":1,', b'"version":7,')
    with pytest.raises(InvalidEvent, match="unknown event type"):
        registry.decode_event(unknown_version, WANTED)
    naive = good.replace(b'"occurred_at":"', b'"occurred_at":"X', 1)
    with pytest.raises(InvalidEvent, match="invalid envelope"):
        registry.decode_event(naive, WANTED)
    with pytest.raises(InvalidEvent, match="invalid envelope"):
        registry.decode_event(b'{"id":"x","type":"community.created","version":1,' + b"\xff", WANTED)


def test_the_head_read_before_parsing_never_decides_the_type():
    """A later duplicate "type" wins in JSON parsing: the typed envelope of the head's type refuses the
    record, and the generic path decodes it as what it really is."""
    registry = default_registry()
    member = MemberChanged(community_id="c-1", member_id="wecom:a", role="member", status="active", tier="",
                           changed_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC), display_name="a")
    env = new_envelope(type="member.joined", data=member, source="membership", community_id="c-1")
    raw = env.to_bytes()
    forged = raw.replace(b'"type":"member.joined"', b'"type":"community.created"', 1)[:-1] + (
        b',"type":"member.joined"}')
    envelope, payload = registry.decode_event(forged, {"community.created", "member.joined"})
    assert envelope.type == "member.joined" and payload == member


def test_an_event_nobody_handles_is_decoded_to_its_envelope_only():
    registry = default_registry()
    raw = created().to_bytes().replace(b'"positioning":"', b'"positioning":"' + b"x" * 300)
    envelope, payload = registry.decode_event(raw, {"member.joined"})  # not validated past the envelope
    assert envelope.type == "community.created" and payload is None


def test_an_envelope_is_serialised_once_and_its_payload_validated_once(monkeypatch):
    registry = default_registry()
    env = created()
    assert env.to_bytes() is env.to_bytes()
    assert Envelope.from_bytes(env.to_bytes()) == env

    def validated_again(*_args, **_kwargs):
        raise AssertionError("the payload was validated a second time")

    monkeypatch.setattr(registry, "parse_payload", validated_again)
    assert registry.route(env) == ("membership.events.v1", "c-1")  # built from the typed model: trusted
    decoded = Envelope.from_bytes(env.to_bytes())  # a dict payload: validated on publish
    with pytest.raises(AssertionError, match="second time"):
        registry.route(decoded)
    changed = env.model_copy(update={"community_id": "c-2"})
    assert changed.payload is None and b'"c-2"' in changed.to_bytes()


async def test_the_outbox_row_holds_the_bytes_built_once(sqlite_db):
    metadata = MetaData()
    outbox, _inbox = add_messaging_tables(metadata)
    session_maker = await sqlite_db(metadata)
    writer = OutboxWriter(table=outbox, registry=default_registry(), source="membership")
    env = created(str(uuid.uuid4()))
    async with session_maker() as session, session.begin():
        await writer.add(session, env)
    async with session_maker() as session:
        (payload,) = (await session.execute(select(outbox.c.payload))).one()
    assert bytes(payload) == env.to_bytes()


@pytest.mark.parametrize("occurred_at", [datetime(2026, 12, 7, 8, 0, 1, 123456, tzinfo=UTC),
                                         datetime(2026, 12, 7, 16, 0, tzinfo=SHANGHAI)])
def test_encode_envelope_writes_the_bytes_new_envelope_writes(occurred_at: datetime):
    """The gateway's outbox rows are encoded without building the envelope (#19): same bytes, same decode."""
    payload = CommunityCreated(community_id="c-1", name="读书会 \"quoted\" \\ \u2028", positioning="每周读一本书",
                               owner_id="owner-1", created_at=datetime(2026, 11, 26, 20, 0, tzinfo=SHANGHAI))
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, "x")
    built = new_envelope(type="community.created", data=payload, source="membership", community_id="c-1",
                         correlation_id="req-1 ✓", occurred_at=occurred_at, event_id=event_id)
    raw = encode_envelope(event_id=event_id, type="community.created", source="membership", community_id="c-1",
                          correlation_id="req-1 ✓", data=payload, occurred_at=occurred_at)
    assert raw == built.to_bytes()
    typed, decoded = default_registry().decode_event(raw, WANTED)
    assert decoded == payload and typed.occurred_at == occurred_at and typed.id == event_id
