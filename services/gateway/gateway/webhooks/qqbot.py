"""QQ's official bot (q.qq.com) webhook: Ed25519-verified callbacks → raw chat events.

Every callback carries `X-Signature-Ed25519` (hex) over `X-Signature-Timestamp` + the raw body, made with
the Ed25519 key pair QQ derives from the bot secret: the secret repeated until it is at least 32 bytes,
its first 32 bytes the private key's seed. op 13 (the callback URL check) is answered with
{"plain_token", "signature": hex(sign(event_ts + plain_token))}; it is verified first like everything
else, or the answer would sign anything for anyone. op 0 dispatches are acknowledged with op 12.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.errors import WebhookUnauthorized
from gateway.webhooks.commands import RawEvent, Unnormalisable, message_event
from qunzhu_common import jsonbody

SEED_BYTES = 32
ACK = json.dumps({"op": 12, "d": 0}).encode()


def private_key(bot_secret: str) -> Ed25519PrivateKey:
    """The bot's Ed25519 key, as QQ derives it from the bot secret."""
    seed = bot_secret.encode()
    if not seed:
        raise ValueError("an empty bot secret")
    while len(seed) < SEED_BYTES:
        seed = seed * 2
    return Ed25519PrivateKey.from_private_bytes(seed[:SEED_BYTES])


def sign(bot_secret: str, message: bytes) -> str:
    return private_key(bot_secret).sign(message).hex()


def verify(headers: Any, body: bytes, *, bot_secret: str, tolerance_s: int, now: float | None = None) -> None:
    signature, stamp = headers.get("x-signature-ed25519", ""), headers.get("x-signature-timestamp", "")
    if not signature or not stamp or not bot_secret:
        raise WebhookUnauthorized("missing")
    try:
        raw = bytes.fromhex(signature)
        if len(raw) != 64:
            raise ValueError
        private_key(bot_secret).public_key().verify(raw, stamp.encode() + body)
    except (ValueError, InvalidSignature):
        raise WebhookUnauthorized("signature") from None
    try:
        if abs((now if now is not None else time.time()) - int(stamp)) > tolerance_s:
            raise WebhookUnauthorized("timestamp", "the signature's timestamp is outside the tolerance")
    except ValueError:
        raise WebhookUnauthorized("timestamp") from None


def _load(payload: bytes) -> dict[str, Any]:
    try:
        body = jsonbody.loads(payload)
    except ValueError as exc:
        raise Unnormalisable(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or isinstance(body.get("op"), bool) or not isinstance(body.get("op"), int):
        raise Unnormalisable("not a QQ bot callback (no integer op)")
    return body


def validation_answer(payload: bytes, bot_secret: str) -> bytes | None:
    """The answer to an op 13 callback URL check, or None for any other callback."""
    try:
        body = _load(payload)
    except Unnormalisable:
        return None
    if body["op"] != 13:
        return None
    data = body.get("d") if isinstance(body.get("d"), dict) else {}
    token, event_ts = data.get("plain_token"), data.get("event_ts")
    if not isinstance(token, str) or not isinstance(event_ts, str):
        return None  # signed but unusable: quarantined like any garbled callback
    return json.dumps({"plain_token": token, "signature": sign(bot_secret, (event_ts + token).encode())}).encode()


def delivery_id(payload: bytes) -> str:
    from gateway.webhooks.adapters import body_digest

    try:
        body = _load(payload)
    except Unnormalisable:
        return body_digest(payload)
    event_id = body.get("id")
    return f"event:{event_id}"[:200] if isinstance(event_id, str) and event_id else body_digest(payload)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise Unnormalisable(f"{what} is missing or not an id")
    return value.strip()


def normalise(payload: bytes, connector: Any) -> list[RawEvent]:
    from gateway.webhooks.adapters import parse_time

    body = _load(payload)
    if body["op"] != 0:
        return []  # op 13 is answered before this; other ops carry no event
    kind, data = body.get("t"), body.get("d")
    if not isinstance(data, dict):
        raise Unnormalisable("a dispatch without d")
    prefix = connector.identity_platform + ":"
    if kind == "GROUP_AT_MESSAGE_CREATE":
        author = data.get("author") if isinstance(data.get("author"), dict) else {}
        content = data.get("content") or ""
        if not isinstance(content, str):
            raise Unnormalisable("content is not a string")
        attachments = data.get("attachments") or []
        if not isinstance(attachments, list):
            raise Unnormalisable("attachments is not a list")
        media = "none"
        for item in attachments:
            kind_of = str((item or {}).get("content_type", "")) if isinstance(item, dict) else ""
            media = ("image" if kind_of.startswith("image") else "video" if kind_of.startswith("video")
                     else "voice" if kind_of.startswith("voice") or kind_of.startswith("audio") else "file")
            break
        return [message_event(
            chat_id=_text(data.get("group_openid") or data.get("group_id"), "group_openid"),
            message_id=_text(data.get("id"), "id"),
            sender_id=prefix + _text(author.get("member_openid") or author.get("id"), "author.member_openid"),
            sender_name="", text=content.strip()[:20000], sent_at=parse_time(data.get("timestamp")), media_kind=media,
        )]
    if kind in ("GROUP_ADD_ROBOT", "GROUP_DEL_ROBOT", "C2C_MESSAGE_CREATE", "GROUP_MSG_REJECT", "GROUP_MSG_RECEIVE",
                "FRIEND_ADD", "FRIEND_DEL", "C2C_MSG_REJECT", "C2C_MSG_RECEIVE"):
        # The bot itself added to / removed from a group (the operator maps group_openid to the community),
        # a private chat with the bot: nothing for the other services.
        return []
    raise Unnormalisable(f"unsupported dispatch {str(kind)[:60]!r}")
