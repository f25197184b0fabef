"""Property: every adapter's normaliser, fed any JSON (WeCom: XML) of the right outer shape, either gives
events that pass the contract and serialise, or raises Unnormalisable (→ quarantine). Nothing else: no
TypeError, OverflowError, RecursionError… that would answer a signed delivery 500 and have it redelivered."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.webhooks.adapters import ADAPTERS, ConnectorView
from gateway.webhooks.commands import Unnormalisable
from gateway.webhooks.ingest import stage_chat_events
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry

REGISTRY = default_registry()
CHATS = ["g-1", "-1001", "wrOgChat"]
TRICKY_TEXT = ["", "\ud800", "a\udfffb", "a\x00b", "9999-99-99", "2026-11-26T12:00:00Z", "2026-11-26T12:00:00",
               "9999-12-31T23:59:59-14:00", "telegram:1", "/checkin 第3天", "打卡", "@all", "none", "image", *CHATS]
TRICKY_NUMBERS = [0, -1, 1e20, -1e20, 2**63, 2**70, 1_790_000_000, 1e308, float("inf"), float("nan"), True]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**80, max_value=2**80), st.floats(),
    st.text(max_size=30), st.sampled_from(TRICKY_TEXT), st.sampled_from(TRICKY_NUMBERS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
deep = st.integers(min_value=60, max_value=3000).map(lambda n: "[" * n + "]" * n)  # as text: json.loads recurses
nested = st.integers(min_value=60, max_value=300).map(lambda n: json.loads("[" * n + "]" * n))


def connector(platform: str, identity: str) -> ConnectorView:
    return ConnectorView(id="conn-1", community_id="c-1", platform=platform, identity_platform=identity,
                         secrets={}, secret_token_hash=None, groups={chat: "c-1" for chat in CHATS})


def check(platform: str, identity: str, payload: bytes) -> None:
    view = connector(platform, identity)
    try:
        raw = ADAPTERS[platform].normalise(payload, view)
        staged = stage_chat_events(raw, registry=REGISTRY, identity_platform=identity, groups=view.groups,
                                   delivery_id="d-1")
    except Unnormalisable as exc:
        str(exc).encode("utf-8")  # the reason is stored as text
        return
    for event in staged:  # what the outbox would be given must serialise
        new_envelope(type=event.type, data=event.payload, source="gateway", community_id=event.community_id
                     ).to_bytes()


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: surrogates travel as \\udxxx escapes, NaN as NaN


# -- generic JSON ----------------------------------------------------------------------------------

GENERIC_KEYS = ["group_id", "message_id", "sender_id", "sender_name", "text", "timestamp", "mentions",
                "mentions_all", "reply_to", "media_kind", "forwarded", "member_id", "display_name", "inviter_id",
                "removed_by", "reactor_id", "target_sender_id", "emoji", "amount_fen", "count"]
generic_event = st.builds(
    lambda kind, chat, fields: {"type": kind, "group_id": chat, **fields},
    st.one_of(st.sampled_from(["message", "member_joined", "member_left", "member_renamed", "reaction",
                               "red_packet"]), json_values),
    st.one_of(st.sampled_from(CHATS), json_values),
    st.dictionaries(st.sampled_from(GENERIC_KEYS), st.one_of(json_values, nested), max_size=8),
)
generic_payload = st.one_of(
    generic_event.map(dumps),
    st.lists(generic_event, max_size=3).map(lambda events: dumps({"events": events})),
    json_values.map(dumps),
    deep.map(lambda d: f'{{"type":"message","group_id":"g-1","text":{d}}}'.encode()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generic_payload)
def test_generic_normaliser_gives_events_or_unnormalisable(payload):
    check("generic", "wechat", payload)


# -- Telegram --------------------------------------------------------------------------------------

MESSAGE_KEYS = ["message_id", "date", "from", "chat", "text", "caption", "entities", "caption_entities",
                "reply_to_message", "new_chat_members", "left_chat_member", "photo", "voice", "forward_origin"]
person = st.one_of(json_values, st.fixed_dictionaries({"id": json_values}, optional={
    "first_name": json_values, "last_name": json_values}))
telegram_message = st.fixed_dictionaries(
    {"chat": st.one_of(json_values, st.fixed_dictionaries({"id": st.one_of(st.just(-1001), json_values)})),
     "date": st.one_of(st.just(1_790_000_000), json_values)},
    optional={"message_id": json_values, "from": person, "text": json_values, "caption": json_values,
              "entities": st.one_of(json_values, st.lists(st.fixed_dictionaries(
                  {"type": st.just("text_mention"), "user": person}), max_size=2)),
              "reply_to_message": st.one_of(json_values, st.fixed_dictionaries({"message_id": json_values,
                                                                                  "from": person})),
              "new_chat_members": st.one_of(json_values, st.lists(person, max_size=2)),
              "left_chat_member": person, "photo": json_values, "forward_origin": json_values},
)
telegram_reaction = st.fixed_dictionaries(
    {"chat": st.one_of(json_values, st.fixed_dictionaries({"id": json_values})), "message_id": json_values},
    optional={"user": person, "date": json_values, "new_reaction": st.one_of(json_values, st.lists(
        st.fixed_dictionaries({"type": st.just("emoji"), "emoji": json_values}), max_size=2)),
        "old_reaction": json_values},
)
telegram_payload = st.one_of(
    st.builds(lambda uid, msg: dumps({"update_id": uid, "message": msg}),
              st.integers(min_value=-2**70, max_value=2**70), st.one_of(telegram_message, json_values)),
    st.builds(lambda uid, r: dumps({"update_id": uid, "message_reaction": r}), st.integers(0, 2**31),
              st.one_of(telegram_reaction, json_values)),
    st.builds(lambda uid, body: dumps({"update_id": uid, **body}), st.integers(0, 2**31),
              st.dictionaries(st.sampled_from(["edited_message", "poll", "message", "message_reaction"]),
                              json_values, max_size=2)),
    json_values.map(dumps),
    deep.map(lambda d: f'{{"update_id":1,"message":{d}}}'.encode()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(telegram_payload)
def test_telegram_normaliser_gives_events_or_unnormalisable(payload):
    check("telegram", "telegram", payload)


# -- WeCom (XML) -----------------------------------------------------------------------------------

WECOM_PATHS = ["MsgType", "ChatId", "From/UserId", "From/Name", "FromUserName", "Text/Content",
               "Text/MentionedList", "CreateTime", "MsgId", "Event", "UpdateDetail", "MemChangeList/Item"]
wecom_text = st.one_of(
    st.text(max_size=20), st.sampled_from(["text", "image", "event", "hologram", "change_external_chat",
                                           "add_member", "del_member", "wrOgChat", "99999999999999999999999",
                                           "1790000000", "@all,zhang", ""]),
    st.integers(min_value=-2**80, max_value=2**80).map(str),
)


def wecom_xml(fields: list[tuple[str, str]]) -> bytes:
    root = ET.Element("xml")
    for path, text in fields:
        parent = root
        for part in path.split("/"):
            parent = ET.SubElement(parent, part)
        parent.text = text
    return ET.tostring(root, encoding="utf-8")


wecom_payload = st.one_of(
    st.lists(st.tuples(st.sampled_from(WECOM_PATHS), wecom_text), max_size=10).map(wecom_xml),
    st.binary(max_size=60),
    st.integers(min_value=50, max_value=3000).map(lambda n: b"<xml>" + b"<a>" * n + b"</a>" * n + b"</xml>"),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wecom_payload)
def test_wecom_normaliser_gives_events_or_unnormalisable(payload):
    check("wecom", "wecom", payload)


# -- QQ: OneBot 11 and the official bot -----------------------------------------------------------

QQ_CHATS = ["-1001", "g-1"]  # a mapped group (CHATS) as a number-like and a string id
segment = st.fixed_dictionaries({"type": st.one_of(st.sampled_from(
    ["text", "at", "reply", "image", "face", "forward", "record"]), json_values)}, optional={"data": st.one_of(
        json_values, st.fixed_dictionaries({}, optional={"text": json_values, "qq": st.one_of(
            st.sampled_from(["all", "123456", ""]), json_values), "id": json_values}))})
cq_text = st.lists(st.one_of(st.text(max_size=10), st.sampled_from([
    "[CQ:at,qq=123456]", "[CQ:at,qq=all]", "[CQ:reply,id=5]", "[CQ:face,id=178]", "[CQ:image,file=a.jpg]",
    "&#91;", "[CQ:", "]", "打卡", "[CQ:at,qq=1 2]"])), max_size=6).map("".join)
onebot_event = st.fixed_dictionaries(
    {"post_type": st.one_of(st.sampled_from(["message", "notice", "request", "meta_event"]), json_values)},
    optional={
        "message_type": st.one_of(st.just("group"), json_values), "sub_type": st.one_of(st.sampled_from(
            ["normal", "anonymous", "approve", "invite", "leave", "kick", "kick_me", "add"]), json_values),
        "notice_type": st.one_of(st.sampled_from(["group_increase", "group_decrease", "group_recall",
                                                  "group_card"]), json_values),
        "request_type": st.one_of(st.just("group"), json_values),
        "group_id": st.one_of(st.sampled_from(QQ_CHATS), json_values), "user_id": json_values,
        "operator_id": json_values, "message_id": json_values, "time": json_values, "self_id": json_values,
        "message": st.one_of(cq_text, st.lists(segment, max_size=4), json_values), "card_new": json_values,
        "sender": st.one_of(json_values, st.fixed_dictionaries({}, optional={
            "card": json_values, "nickname": json_values})),
        "flag": json_values, "comment": json_values,
    },
)


def check_onebot(payload: bytes) -> None:
    check("onebot", "qq", payload)
    try:
        ADAPTERS["onebot"].join_request(payload, connector("onebot", "qq"))
    except Unnormalisable as exc:
        str(exc).encode("utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(onebot_event.map(dumps), json_values.map(dumps), st.binary(max_size=40),
                 deep.map(lambda d: f'{{"post_type":"message","message_type":"group","message":{d}}}'.encode())))
def test_onebot_normaliser_gives_events_or_unnormalisable(payload):
    check_onebot(payload)


qq_dispatch = st.fixed_dictionaries(
    {"op": st.one_of(st.sampled_from([0, 13]), json_values)},
    optional={"t": st.one_of(st.sampled_from(["GROUP_AT_MESSAGE_CREATE", "GROUP_ADD_ROBOT", "C2C_MESSAGE_CREATE"]),
                             json_values),
              "id": json_values,
              "d": st.one_of(json_values, st.fixed_dictionaries({}, optional={
                  "group_openid": st.one_of(st.sampled_from(CHATS), json_values), "id": json_values,
                  "content": json_values, "timestamp": json_values, "attachments": json_values,
                  "author": st.one_of(json_values, st.fixed_dictionaries({}, optional={
                      "member_openid": json_values}))}))},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(qq_dispatch.map(dumps), json_values.map(dumps), st.binary(max_size=40)))
def test_qq_bot_normaliser_gives_events_or_unnormalisable(payload):
    check("qq", "qq", payload)
