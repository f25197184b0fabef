"""QQ groups through OneBot 11 (NapCat, Lagrange.OneBot, LLOneBot…): HTTP POST events → raw chat events.

Spec: github.com/botuniverse/onebot-11 (communication/http-post.md, event/*.md, message/*.md). A delivery
is signed `X-Signature: sha1=<hex HMAC-SHA1(secret, body)>` and names the bot in `X-Self-ID`. A group
`message` is a segment array or a CQ-code string; `notice` group_increase / group_decrease become joins
and leaves, group_recall a `chat.message.recalled`; a `request` to join a group is decided at the door
(gateway.webhooks.door); `meta_event` (heartbeat, lifecycle) is answered 204 and recorded nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from gateway.errors import WebhookUnauthorized
from gateway.webhooks.commands import RawEvent, Unnormalisable, message_event
from qunzhu_common import jsonbody

_MEDIA = {"image": "image", "face": "emoji", "mface": "sticker", "record": "voice", "video": "video",
          "file": "file", "share": "link_card", "json": "link_card", "xml": "link_card", "music": "link_card"}
_CQ = re.compile(r"\[CQ:([A-Za-z0-9_.-]+)((?:,[^\]]*)?)\]")
ANONYMOUS = "80000000"  # the user_id OneBot gives anonymous group messages


def sign(secret: str, body: bytes) -> str:
    """The X-Signature header a OneBot implementation sends for `body`."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify(headers: dict[str, str] | Any, body: bytes, *, secret: str, self_id: str, tolerance_s: int,
           now: float | None = None) -> dict[str, Any]:
    """Signature (constant time), bot id and event time; returns the event. Anything off → 401."""
    presented = headers.get("x-signature", "")
    if not presented or not secret:
        raise WebhookUnauthorized("missing")
    if not hmac.compare_digest(presented.strip().lower().encode(), sign(secret, body).encode()):
        raise WebhookUnauthorized("signature")
    if headers.get("x-self-id", "").strip() != self_id:
        raise WebhookUnauthorized("self_id", "X-Self-ID is not this connector's bot")
    try:
        event = jsonbody.loads(body)
    except ValueError:
        return {}  # signed but garbled: the normaliser quarantines it
    if not isinstance(event, dict):
        return {}
    if str(event.get("self_id", self_id)) != self_id:
        raise WebhookUnauthorized("self_id", "the event's self_id is not this connector's bot")
    stamp = event.get("time")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp == stamp:  # not NaN
        if abs((now if now is not None else time.time()) - stamp) > tolerance_s:
            raise WebhookUnauthorized("timestamp", "the event's time is outside the tolerance")
    return event


def is_meta(event: dict[str, Any]) -> bool:
    """Heartbeats and lifecycle events, and the bot's own messages echoed back (NapCat's `message_sent`):
    answered 204, recorded nowhere."""
    return event.get("post_type") in ("meta_event", "message_sent")


def _load(payload: bytes) -> dict[str, Any]:
    try:
        event = jsonbody.loads(payload)
    except ValueError as exc:
        raise Unnormalisable(f"not JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("post_type"), str):
        raise Unnormalisable("not a OneBot 11 event (no post_type)")
    return event


def delivery_id(payload: bytes) -> str:
    """A group message by its message id (a bridge re-posting it is a duplicate), a request by its flag;
    anything else by digest."""
    from gateway.webhooks.adapters import body_digest

    try:
        event = _load(payload)
    except Unnormalisable:
        return body_digest(payload)
    if event.get("post_type") == "message" and event.get("message_id") is not None:
        return f"msg:{event.get('group_id', '')}:{event['message_id']}"[:200]
    if event.get("post_type") == "request" and isinstance(event.get("flag"), str) and event["flag"]:
        return f"request:{event['flag']}"  # one request, however often it is posted (longer ids: the digest)
    return body_digest(payload)


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise Unnormalisable(f"{what} is missing or not an id")
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise Unnormalisable(f"{what} is not an id")
    return text


def _optional_id(value: Any, what: str) -> str | None:
    return None if value in (None, "", 0) else _id(value, what)


def normalise(payload: bytes, connector: Any) -> list[RawEvent]:
    from gateway.webhooks.adapters import parse_time

    event = _load(payload)
    prefix = connector.identity_platform + ":"
    kind = event["post_type"]
    if kind in ("meta_event", "request", "message_sent"):
        return []  # heartbeats, the bot's own messages; join requests are decided at the door
    if kind == "message":
        return _message(event, prefix, parse_time, self_id=str(event.get("self_id", "")))
    if kind == "notice":
        return _notice(event, prefix, parse_time, self_id=str(event.get("self_id", "")))
    raise Unnormalisable(f"unknown post_type {str(kind)[:40]!r}")


def _message(event: dict[str, Any], prefix: str, parse_time: Any, *, self_id: str) -> list[RawEvent]:
    if event.get("message_type") != "group":
        return []  # private chats are not a community's group
    chat = _id(event.get("group_id"), "group_id")
    user = _id(event.get("user_id"), "user_id")
    if user == ANONYMOUS or event.get("sub_type") == "anonymous":
        return []  # an anonymous message names nobody
    if user == self_id:
        return []  # the bot's own message is nobody's activity
    sender = event.get("sender") or {}
    if not isinstance(sender, dict):
        raise Unnormalisable("sender is not an object")
    name = sender.get("card") or sender.get("nickname") or ""
    if not isinstance(name, str):
        raise Unnormalisable("sender.card / sender.nickname is not a string")
    parsed = read_message(event.get("message"))
    return [message_event(
        chat_id=chat, message_id=_id(event.get("message_id"), "message_id"), sender_id=prefix + user,
        sender_name=name[:200], text=parsed.text, sent_at=parse_time(event.get("time")),
        mentions=[prefix + m for m in parsed.mentions], mentions_all=parsed.mentions_all,
        reply_to_message_id=parsed.reply_to, media_kind=parsed.media, forwarded=parsed.forwarded,
    )]


def _notice(event: dict[str, Any], prefix: str, parse_time: Any, *, self_id: str) -> list[RawEvent]:
    notice, sub = event.get("notice_type"), event.get("sub_type")
    if notice not in ("group_increase", "group_decrease", "group_card", "group_recall"):
        return []  # uploads, admin changes, pokes…
    chat = _id(event.get("group_id"), "group_id")
    user = _id(event.get("user_id"), "user_id")
    at = parse_time(event.get("time"))
    operator = _optional_id(event.get("operator_id"), "operator_id")
    if notice == "group_recall":  # the sender or an admin withdrew a message (the bot's own: nobody's activity)
        if user == self_id:
            return []
        return [RawEvent("chat.message.recalled", chat, dict(
            message_id=_id(event.get("message_id"), "message_id"), sender_id=prefix + user,
            operator_id=prefix + operator if operator is not None else None, recalled_at=at))]
    if user == self_id or sub == "kick_me":
        return []  # the bot itself came or went
    if notice == "group_increase":
        inviter = prefix + operator if sub == "invite" and operator not in (None, user) else None
        return [RawEvent("chat.member.joined", chat, dict(member_id=prefix + user, inviter_id=inviter, joined_at=at))]
    if notice == "group_decrease":
        removed_by = prefix + operator if sub == "kick" and operator not in (None, user) else None
        return [RawEvent("chat.member.left", chat, dict(member_id=prefix + user, removed_by=removed_by, left_at=at))]
    card = event.get("card_new")  # go-cqhttp's group card change, kept by NapCat and Lagrange
    if not isinstance(card, str):
        raise Unnormalisable("group_card without card_new")
    return [RawEvent("chat.member.renamed", chat, dict(member_id=prefix + user, display_name=card[:200],
                                                       renamed_at=at))]


@dataclass(frozen=True)
class JoinRequest:
    chat_id: str
    user_id: str
    flag: str
    comment: str


def join_request(payload: bytes) -> JoinRequest | None:
    """A request to join a group (`request_type: group`, `sub_type: add`); an invitation of the bot itself
    (`sub_type: invite`) is left to the operator."""
    event = _load(payload)
    if event.get("post_type") != "request" or event.get("request_type") != "group" or event.get("sub_type") != "add":
        return None
    flag, comment = event.get("flag"), event.get("comment") or ""
    if not isinstance(flag, str) or not flag or len(flag) > 500:
        raise Unnormalisable("a join request without a usable flag")
    if not isinstance(comment, str):
        raise Unnormalisable("comment is not a string")
    return JoinRequest(_id(event.get("group_id"), "group_id"), _id(event.get("user_id"), "user_id"), flag,
                       comment[:500])


# -- messages: segment arrays and CQ codes (message/array.md, message/string.md, message/segment.md) --


@dataclass
class Parsed:
    text: str = ""
    mentions: list[str] | None = None
    mentions_all: bool = False
    reply_to: str | None = None
    media: str = "none"
    forwarded: bool = False


def read_message(message: Any) -> Parsed:
    if isinstance(message, str):
        segments = parse_cq(message)
    elif isinstance(message, list):
        segments = message
    elif isinstance(message, dict):  # a single segment object is allowed too
        segments = [message]
    else:
        raise Unnormalisable("message is neither a segment array nor a CQ-code string")
    parsed, text, mentions = Parsed(), [], []
    for segment in segments:
        if not isinstance(segment, dict) or not isinstance(segment.get("type"), str):
            raise Unnormalisable("a message segment without a type")
        data = segment.get("data") or {}
        if not isinstance(data, dict):
            raise Unnormalisable("a message segment's data is not an object")
        kind = segment["type"]
        if kind == "text":
            value = data.get("text", "")
            if not isinstance(value, str):
                raise Unnormalisable("a text segment's text is not a string")
            text.append(value)
        elif kind == "at":
            qq = data.get("qq")
            if qq == "all":
                parsed.mentions_all = True
            elif (target := _optional_id(qq, "at.qq")) is not None and target not in mentions:
                mentions.append(target)
        elif kind == "reply":
            parsed.reply_to = _optional_id(data.get("id"), "reply.id")
        elif kind in ("forward", "node"):
            parsed.forwarded = True
        elif kind in _MEDIA and parsed.media == "none":
            parsed.media = _MEDIA[kind]
    parsed.text, parsed.mentions = "".join(text).strip()[:20000], mentions
    return parsed


def _unescape(value: str) -> str:
    return value.replace("&#44;", ",").replace("&#91;", "[").replace("&#93;", "]").replace("&amp;", "&")


def parse_cq(message: str) -> list[dict[str, Any]]:
    """A CQ-code string as segments: `你好[CQ:at,qq=123] [CQ:face,id=178]` → text, at, text, face."""
    segments: list[dict[str, Any]] = []
    position = 0
    for match in _CQ.finditer(message):
        if match.start() > position:
            segments.append({"type": "text", "data": {"text": _unescape(message[position:match.start()])}})
        data = {}
        for pair in match.group(2).split(",")[1:]:
            key, _, value = pair.partition("=")
            data[key] = _unescape(value)
        segments.append({"type": match.group(1), "data": data})
        position = match.end()
    if position < len(message):
        segments.append({"type": "text", "data": {"text": _unescape(message[position:])}})
    return segments
