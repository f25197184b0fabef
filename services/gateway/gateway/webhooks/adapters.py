"""Per-platform adapters: verify a delivery, then turn its payload into raw chat events.

`verify` raises WebhookUnauthorized (401, no side effect); `normalise` raises Unnormalisable for a
verified payload we cannot understand (acknowledged and quarantined).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import WebhookUnauthorized
from gateway.webhooks import onebot, qqbot, telegram, wecom
from gateway.webhooks.commands import RawEvent, Unnormalisable, message_event
from gateway.webhooks.verify import verify_standard, verify_telegram
from gateway.webhooks.wecom_crypto import WecomCryptoError, check_signature, decrypt
from qunzhu_common import jsonbody
from qunzhu_common.timeutil import utcnow


@dataclass(frozen=True)
class Incoming:
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """A platform-specific answer to a delivery (instead of our JSON acknowledgement)."""

    status_code: int = 200
    body: bytes = b""
    media_type: str | None = None


@dataclass(frozen=True)
class Verified:
    payload: bytes  # what to normalise (WeCom: the decrypted XML)
    delivery_id: str | None  # when the transport carries it (Standard Webhooks' webhook-id)
    reply: Reply | None = None  # answer this at once and record nothing (OneBot heartbeats, QQ's URL check)


@dataclass(frozen=True)
class ConnectorView:
    """A connector ready for use: secrets opened, groups mapped (chat id → community id)."""

    id: str
    community_id: str
    platform: str
    identity_platform: str
    secrets: Mapping[str, Any]
    secret_token_hash: str | None
    groups: Mapping[str, str]


def body_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_time(value: Any) -> datetime:
    """Unix seconds or ISO 8601 with a zone, as an aware UTC datetime; anything else is Unnormalisable."""
    if value is None or value == "":
        return utcnow()
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"a {type(value).__name__}")
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            parsed = datetime.fromtimestamp(value, UTC)
        if parsed.tzinfo is None:
            raise Unnormalisable(f"timestamp {_shown(value)} has no time zone")
        return parsed.astimezone(UTC)  # also finds offsets that push it past year 9999
    except (TypeError, ValueError, OverflowError, OSError) as exc:  # "9999-99-99", 1e20, nan, {}
        if isinstance(exc, Unnormalisable):
            raise
        raise Unnormalisable(f"timestamp {_shown(value)} is not a time ({exc})") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def normaliser(normalise: Callable[[bytes, Any], list[RawEvent]]) -> Callable[[bytes, Any], list[RawEvent]]:
    """Every failure to read a verified payload (a type, a range, an overflow, a missing field) becomes
    Unnormalisable, so it is quarantined and acknowledged instead of answered 500 and redelivered forever."""

    @functools.wraps(normalise)
    def guarded(payload: bytes, connector: Any) -> list[RawEvent]:
        try:
            return normalise(payload, connector)
        except Unnormalisable:
            raise
        except Exception as exc:  # noqa: BLE001 - any other failure on a verified payload is the sender's
            raise Unnormalisable(f"{type(exc).__name__}: {exc}") from None

    return guarded


# -- generic JSON, Standard Webhooks ----------------------------------------------------------------


def verify_generic(incoming: Incoming, connector: ConnectorView, *, tolerance_s: int) -> Verified:
    secrets = [str(s) for s in connector.secrets.get("signing_secrets", [])]
    delivery_id = verify_standard(incoming.headers, incoming.body, secrets, tolerance_s=tolerance_s)
    return Verified(incoming.body, delivery_id)


def normalise_generic(payload: bytes, connector: ConnectorView) -> list[RawEvent]:
    """Our documented JSON: {"type": "message"|"member_joined"|…, "group_id": "<chat id>", …}."""
    try:
        body = jsonbody.loads(payload)
    except ValueError as exc:  # not JSON, too deep, a lone surrogate or a NUL
        raise Unnormalisable(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Unnormalisable("the payload is not a JSON object")
    items = body.get("events") if "events" in body else [body]
    if not isinstance(items, list) or not items:
        raise Unnormalisable("no events")
    prefix = connector.identity_platform + ":"
    return [_generic_event(item, prefix) for item in items]


def _generic_event(item: Any, prefix: str) -> RawEvent:
    if not isinstance(item, dict):
        raise Unnormalisable("an event is not an object")
    kind, chat = item.get("type"), _id(item, "group_id")
    if chat is None:
        raise Unnormalisable("group_id is missing")

    def person(key: str, source: dict[str, Any] = item) -> str | None:
        value = _id(source, key)
        return None if value is None else prefix + value

    def text(key: str, default: str = "") -> str:
        value = item.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise Unnormalisable(f"{key} is a {type(value).__name__}, not a string")
        return value

    at = parse_time(item.get("timestamp"))
    if kind == "message":
        reply, mentions = item.get("reply_to") or {}, item.get("mentions") or []
        if not isinstance(reply, dict):
            raise Unnormalisable("reply_to is not an object")
        if not isinstance(mentions, list):
            raise Unnormalisable("mentions is not a list")
        return message_event(
            chat_id=chat, message_id=_id(item, "message_id") or "", sender_id=person("sender_id") or "",
            sender_name=text("sender_name"), text=text("text"), sent_at=at,
            mentions=[prefix + m for m in (_id({"mentions": m}, "mentions") for m in mentions) if m is not None],
            mentions_all=bool(item.get("mentions_all", False)),
            reply_to_message_id=_id(reply, "message_id"), reply_to_sender_id=person("sender_id", reply),
            media_kind=text("media_kind", "none"), forwarded=bool(item.get("forwarded", False)),
            sender_username=text("sender_username"), mention_names=_names(item.get("mention_names")),
        )
    if kind == "message_recalled":
        if not (recalled := _id(item, "message_id")):
            raise Unnormalisable("message_recalled names no message_id")
        return RawEvent("chat.message.recalled", chat, dict(
            message_id=recalled, sender_id=person("sender_id"),
            operator_id=person("operator_id"), recalled_at=at))
    if kind == "member_joined":
        joined = person("member_id")
        return RawEvent("chat.member.joined", chat, dict(
            member_id=joined, display_name=text("display_name"),
            inviter_id=person("inviter_id"), joined_at=at),
            usernames={joined: text("username")} if joined and text("username") else {})
    if kind == "member_left":
        return RawEvent("chat.member.left", chat, dict(
            member_id=person("member_id"), removed_by=person("removed_by"), left_at=at))
    if kind == "member_renamed":
        return RawEvent("chat.member.renamed", chat, dict(
            member_id=person("member_id"), display_name=text("display_name"), renamed_at=at))
    if kind == "reaction":
        return RawEvent("chat.reaction.added", chat, dict(
            message_id=_id(item, "message_id") or "", reactor_id=person("reactor_id"),
            target_sender_id=person("target_sender_id"), emoji=text("emoji"), reacted_at=at))
    if kind == "red_packet":
        return RawEvent("chat.red_packet.sent", chat, dict(
            sender_id=person("sender_id"), amount_fen=_count(item, "amount_fen"), count=_count(item, "count"),
            sent_at=at))
    raise Unnormalisable(f"unknown event type {_shown(kind)}")


def _names(value: Any) -> list[str]:
    """`mention_names`: @-names the text mentions without an id (["dave", "李一天"])."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise Unnormalisable("mention_names is not a list of strings")
    return [n.lstrip("@")[:200] for n in value if n.lstrip("@")]


def _id(item: dict[str, Any], key: str) -> str | None:
    """An id as a string (platforms send them as strings or integers); absent or empty → None."""
    value = item.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unnormalisable(f"{key} is a {type(value).__name__}, not a string or an integer")
    return str(value)


def _count(item: dict[str, Any], key: str) -> int | None:
    """A whole number the services can store (red packet amounts and counts); absent → None."""
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise Unnormalisable(f"{key} {_shown(value)} is not a whole number from 0 to 2**53")
    return value


# -- Telegram -------------------------------------------------------------------------------------


def verify_telegram_update(incoming: Incoming, connector: ConnectorView, *, tolerance_s: int) -> Verified:
    verify_telegram(incoming.headers, connector.secret_token_hash)
    return Verified(incoming.body, None)


# -- WeCom -----------------------------------------------------------------------------------------


def verify_wecom(incoming: Incoming, connector: ConnectorView, *, tolerance_s: int) -> Verified:
    """POST callback: check msg_signature over the <Encrypt> element, then decrypt it."""
    encrypted = wecom.encrypted_element(incoming.body)
    return Verified(open_wecom(incoming.query, encrypted, connector, tolerance_s=tolerance_s), None)


def open_wecom(query: Mapping[str, str], encrypted: str, connector: ConnectorView, *, tolerance_s: int) -> bytes:
    """Signature, timestamp and receive id checks shared by the echostr URL check and callbacks."""
    signature, stamp, nonce = query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
    if not (signature and stamp and nonce and encrypted):
        raise WebhookUnauthorized("missing")
    token = str(connector.secrets.get("token", ""))
    if not check_signature(token, stamp, nonce, encrypted, signature):
        raise WebhookUnauthorized("signature")
    try:
        if abs(utcnow().timestamp() - int(stamp)) > tolerance_s:
            raise WebhookUnauthorized("timestamp")
    except ValueError:
        raise WebhookUnauthorized("timestamp") from None
    try:
        message, receive_id = decrypt(str(connector.secrets.get("encoding_aes_key", "")), encrypted)
    except WecomCryptoError as exc:
        raise WebhookUnauthorized("decryption", str(exc)) from None
    corp_id = connector.secrets.get("corp_id")
    if corp_id and receive_id != corp_id:
        raise WebhookUnauthorized("receive_id")
    return message


# -- QQ: OneBot 11 and the official bot ------------------------------------------------------------


def verify_onebot(incoming: Incoming, connector: ConnectorView, *, tolerance_s: int) -> Verified:
    event = onebot.verify(incoming.headers, incoming.body, secret=str(connector.secrets.get("secret", "")),
                          self_id=str(connector.secrets.get("self_id", "")), tolerance_s=tolerance_s)
    if onebot.is_meta(event):
        return Verified(incoming.body, None, reply=Reply(204))
    return Verified(incoming.body, None)


def verify_qqbot(incoming: Incoming, connector: ConnectorView, *, tolerance_s: int) -> Verified:
    secret = str(connector.secrets.get("app_secret", ""))
    qqbot.verify(incoming.headers, incoming.body, bot_secret=secret, tolerance_s=tolerance_s)
    answer = qqbot.validation_answer(incoming.body, secret)
    if answer is not None:
        return Verified(incoming.body, None, reply=Reply(200, answer, "application/json"))
    return Verified(incoming.body, None)


def _qqbot_ack(status: str) -> Reply:
    """QQ's HTTP callback ack (op 12), whatever became of the dispatch."""
    return Reply(200, qqbot.ACK, "application/json")


def _onebot_join_request(payload: bytes, connector: ConnectorView) -> onebot.JoinRequest | None:
    return onebot.join_request(payload)


@dataclass(frozen=True)
class Adapter:
    verify: Callable[..., Verified]
    normalise: Callable[[bytes, ConnectorView], list[RawEvent]]
    delivery_id: Callable[[bytes], str]
    reply: Callable[[str], Reply] | None = None  # the answer to a recorded delivery, by its status
    join_request: Callable[[bytes, ConnectorView], onebot.JoinRequest | None] | None = None  # decided at the door


ADAPTERS: dict[str, Adapter] = {
    "generic": Adapter(verify_generic, normaliser(normalise_generic), body_digest),
    "telegram": Adapter(verify_telegram_update, normaliser(telegram.normalise), telegram.delivery_id),
    "wecom": Adapter(verify_wecom, normaliser(wecom.normalise), wecom.delivery_id),
    "onebot": Adapter(verify_onebot, normaliser(onebot.normalise), onebot.delivery_id,
                      join_request=_onebot_join_request),
    "qq": Adapter(verify_qqbot, normaliser(qqbot.normalise), qqbot.delivery_id, reply=_qqbot_ack),
}
