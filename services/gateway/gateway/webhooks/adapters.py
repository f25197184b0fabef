"""Per-platform adapters: verify a delivery, then turn its payload into raw chat events.

`verify` raises WebhookUnauthorized (401, no side effect); `normalise` raises Unnormalisable for a
verified payload we cannot understand (acknowledged and quarantined).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import WebhookUnauthorized
from gateway.webhooks import telegram, wecom
from gateway.webhooks.commands import RawEvent, Unnormalisable, message_event
from gateway.webhooks.verify import verify_standard, verify_telegram
from gateway.webhooks.wecom_crypto import WecomCryptoError, check_signature, decrypt
from qunzhu_common.timeutil import utcnow


@dataclass(frozen=True)
class Incoming:
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Verified:
    payload: bytes  # what to normalise (WeCom: the decrypted XML)
    delivery_id: str | None  # when the transport carries it (Standard Webhooks' webhook-id)


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
    if value in (None, ""):
        return utcnow()
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise Unnormalisable(f"timestamp {value!r} has no time zone")
    return parsed


# -- generic JSON, Standard Webhooks ----------------------------------------------------------------


def verify_generic(incoming: Incoming, connector: ConnectorView, *, tolerance_s: int) -> Verified:
    secrets = [str(s) for s in connector.secrets.get("signing_secrets", [])]
    delivery_id = verify_standard(incoming.headers, incoming.body, secrets, tolerance_s=tolerance_s)
    return Verified(incoming.body, delivery_id)


def normalise_generic(payload: bytes, connector: ConnectorView) -> list[RawEvent]:
    """Our documented JSON: {"type": "message"|"member_joined"|…, "group_id": "<chat id>", …}."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
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
    kind, chat = item.get("type"), item.get("group_id")
    if not isinstance(chat, str | int) or chat == "":
        raise Unnormalisable("group_id is missing")
    chat = str(chat)

    def person(key: str) -> str | None:
        value = item.get(key)
        return None if value in (None, "") else prefix + str(value)

    at = parse_time(item.get("timestamp"))
    if kind == "message":
        reply = item.get("reply_to") or {}
        return message_event(
            chat_id=chat, message_id=str(item.get("message_id", "")), sender_id=person("sender_id") or "",
            sender_name=str(item.get("sender_name", "")), text=str(item.get("text", "")), sent_at=at,
            mentions=[prefix + str(m) for m in item.get("mentions", [])],
            mentions_all=bool(item.get("mentions_all", False)),
            reply_to_message_id=str(reply["message_id"]) if reply.get("message_id") else None,
            reply_to_sender_id=prefix + str(reply["sender_id"]) if reply.get("sender_id") else None,
            media_kind=str(item.get("media_kind", "none")), forwarded=bool(item.get("forwarded", False)),
        )
    if kind == "member_joined":
        return RawEvent("chat.member.joined", chat, dict(
            member_id=person("member_id"), display_name=str(item.get("display_name", "")),
            inviter_id=person("inviter_id"), joined_at=at))
    if kind == "member_left":
        return RawEvent("chat.member.left", chat, dict(
            member_id=person("member_id"), removed_by=person("removed_by"), left_at=at))
    if kind == "member_renamed":
        return RawEvent("chat.member.renamed", chat, dict(
            member_id=person("member_id"), display_name=str(item.get("display_name", "")), renamed_at=at))
    if kind == "reaction":
        return RawEvent("chat.reaction.added", chat, dict(
            message_id=str(item.get("message_id", "")), reactor_id=person("reactor_id"),
            target_sender_id=person("target_sender_id"), emoji=str(item.get("emoji", "")), reacted_at=at))
    if kind == "red_packet":
        return RawEvent("chat.red_packet.sent", chat, dict(
            sender_id=person("sender_id"), amount_fen=item.get("amount_fen"), count=item.get("count"), sent_at=at))
    raise Unnormalisable(f"unknown event type {kind!r}")


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


@dataclass(frozen=True)
class Adapter:
    verify: Callable[..., Verified]
    normalise: Callable[[bytes, ConnectorView], list[RawEvent]]
    delivery_id: Callable[[bytes], str]


ADAPTERS: dict[str, Adapter] = {
    "generic": Adapter(verify_generic, normalise_generic, body_digest),
    "telegram": Adapter(verify_telegram_update, telegram.normalise, telegram.delivery_id),
    "wecom": Adapter(verify_wecom, wecom.normalise, wecom.delivery_id),
}
