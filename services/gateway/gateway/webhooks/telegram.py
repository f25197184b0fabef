"""Telegram Bot API updates → raw chat events (https://core.telegram.org/bots/api#update)."""

from __future__ import annotations

from typing import Any

from gateway.webhooks.commands import RawEvent, Unnormalisable, message_event
from qunzhu_common import jsonbody

_MEDIA = (
    ("photo", "image"), ("sticker", "sticker"), ("video", "video"), ("video_note", "video"),
    ("animation", "video"), ("voice", "voice"), ("audio", "voice"), ("document", "file"),
)
# Updates we understand but that carry nothing for the other services.
_IGNORED = ("edited_message", "edited_channel_post", "channel_post", "callback_query", "my_chat_member",
            "chat_member", "inline_query", "poll", "poll_answer", "message_reaction_count")


def _load(payload: bytes) -> dict[str, Any]:
    try:
        update = jsonbody.loads(payload)
    except ValueError as exc:  # not JSON, too deep, a lone surrogate or a NUL
        raise Unnormalisable(f"not JSON: {exc}") from None
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise Unnormalisable("not a Telegram update (no integer update_id)")
    return update


def delivery_id(payload: bytes) -> str:
    from gateway.webhooks.adapters import body_digest

    try:
        return f"update:{_load(payload)['update_id']}"
    except Unnormalisable:
        return body_digest(payload)


def normalise(payload: bytes, connector: Any) -> list[RawEvent]:
    from gateway.webhooks.adapters import parse_time

    update = _load(payload)
    prefix = connector.identity_platform + ":"
    if "message" in update:
        return _message(update["message"], prefix, parse_time)
    if "message_reaction" in update:
        return _reaction(update["message_reaction"], prefix, parse_time)
    if any(key in update for key in _IGNORED):
        return []
    raise Unnormalisable(f"unsupported update with keys {sorted(k for k in update if k != 'update_id')}")


def _message(msg: dict[str, Any], prefix: str, parse_time: Any) -> list[RawEvent]:
    try:
        chat = str(msg["chat"]["id"])
        at = parse_time(msg["date"])
        sender = msg.get("from") or {}
    except (KeyError, TypeError) as exc:
        raise Unnormalisable(f"message without {exc}") from None
    if "new_chat_members" in msg:
        return [
            RawEvent("chat.member.joined", chat, dict(
                member_id=prefix + str(m["id"]), display_name=_name(m),
                inviter_id=prefix + str(sender["id"]) if sender.get("id") not in (None, m["id"]) else None,
                joined_at=at), usernames=_username(prefix + str(m["id"]), m))
            for m in msg["new_chat_members"]
        ]
    if "left_chat_member" in msg:
        left = msg["left_chat_member"]
        return [RawEvent("chat.member.left", chat, dict(
            member_id=prefix + str(left["id"]),
            removed_by=prefix + str(sender["id"]) if sender.get("id") not in (None, left["id"]) else None,
            left_at=at))]
    if "id" not in sender:
        raise Unnormalisable("message without a sender")
    text = msg.get("text") or msg.get("caption") or ""
    media = next((kind for key, kind in _MEDIA if key in msg), "none")
    if not text and media == "none":
        return []  # service messages (pinned, title changed…) carry nothing we use
    entities = msg.get("entities") or msg.get("caption_entities") or []
    mentions = [prefix + str(e["user"]["id"]) for e in entities if e.get("type") == "text_mention" and e.get("user")]
    # "@dave" (a `mention` entity) names a username, not a user: the names directory resolves it.
    names = [_entity_text(text, e).lstrip("@") for e in entities if e.get("type") == "mention"]
    reply = msg.get("reply_to_message") or {}
    return [message_event(
        chat_id=chat, message_id=str(msg["message_id"]), sender_id=prefix + str(sender["id"]),
        sender_name=_name(sender), text=text, sent_at=at, mentions=mentions,
        reply_to_message_id=str(reply["message_id"]) if "message_id" in reply else None,
        reply_to_sender_id=prefix + str(reply["from"]["id"]) if (reply.get("from") or {}).get("id") else None,
        media_kind=media, forwarded=any(k in msg for k in ("forward_origin", "forward_from", "forward_date")),
        sender_username=str(sender.get("username") or ""), mention_names=names,
    )]


def _reaction(reaction: dict[str, Any], prefix: str, parse_time: Any) -> list[RawEvent]:
    user = reaction.get("user") or {}
    if "id" not in user:
        return []  # anonymous reactions (channels) name nobody
    old = {r.get("emoji") for r in reaction.get("old_reaction", [])}
    return [
        RawEvent("chat.reaction.added", str(reaction["chat"]["id"]), dict(
            message_id=str(reaction["message_id"]), reactor_id=prefix + str(user["id"]),
            emoji=r["emoji"], reacted_at=parse_time(reaction.get("date"))))
        for r in reaction.get("new_reaction", [])
        if r.get("type") == "emoji" and r.get("emoji") not in old
    ]


def _entity_text(text: str, entity: dict[str, Any]) -> str:
    """The entity's part of the text: Telegram counts offsets and lengths in UTF-16 code units."""
    units = text.encode("utf-16-le", "surrogatepass")
    start, length = int(entity["offset"]), int(entity["length"])
    if start < 0 or length < 0:
        raise Unnormalisable("an entity with a negative offset or length")
    return units[2 * start:2 * (start + length)].decode("utf-16-le", "replace")[:200]


def _username(person: str, user: dict[str, Any]) -> dict[str, str]:
    return {person: str(user["username"])} if user.get("username") else {}


def _name(user: dict[str, Any]) -> str:
    return " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)[:200]
