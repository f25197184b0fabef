"""WeCom callbacks → raw chat events: group robot messages (群机器人回调) and customer-group changes
(change_external_chat add_member / del_member). Payloads are XML; entity declarations are refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from gateway.errors import WebhookUnauthorized
from gateway.webhooks.commands import RawEvent, Unnormalisable, message_event

_MEDIA = {"image": "image", "voice": "voice", "video": "video", "file": "file", "link": "link_card",
          "miniprogram": "mini_program", "emotion": "sticker"}


def _parse(payload: bytes) -> ET.Element:
    if b"<!DOCTYPE" in payload or b"<!ENTITY" in payload:
        raise ValueError("DTDs are not accepted")
    return ET.fromstring(payload)


def encrypted_element(body: bytes) -> str:
    """The <Encrypt> text of a callback body (unverified: a body without it is a 401)."""
    try:
        return (_parse(body).findtext("Encrypt") or "").strip()
    except (ET.ParseError, ValueError):
        raise WebhookUnauthorized("missing", "the body is not a WeCom encrypted callback") from None


def delivery_id(payload: bytes) -> str:
    from gateway.webhooks.adapters import body_digest

    try:
        root = _parse(payload)
    except (ET.ParseError, ValueError):
        return body_digest(payload)
    msg_id = (root.findtext("MsgId") or "").strip()
    return f"msg:{msg_id}" if msg_id else body_digest(payload)


def normalise(payload: bytes, connector: Any) -> list[RawEvent]:
    from gateway.webhooks.adapters import parse_time

    try:
        root = _parse(payload)
    except (ET.ParseError, ValueError) as exc:
        raise Unnormalisable(f"not XML: {exc}") from None
    prefix = connector.identity_platform + ":"
    created = root.findtext("CreateTime")
    at = parse_time(int(created)) if created and created.isdigit() else parse_time(None)
    msg_type = (root.findtext("MsgType") or "").strip()
    if msg_type == "event":
        return _event(root, prefix, at)
    chat = (root.findtext("ChatId") or "").strip()
    user = (root.findtext("From/UserId") or root.findtext("FromUserName") or "").strip()
    if not chat or not user:
        raise Unnormalisable("a message without ChatId or sender")
    text = (root.findtext("Text/Content") or "") if msg_type == "text" else ""
    media = "none" if msg_type in ("text", "") else _MEDIA.get(msg_type)
    if media is None:
        raise Unnormalisable(f"unknown MsgType {msg_type!r}")
    mentioned = [prefix + m.strip() for m in (root.findtext("Text/MentionedList") or "").split(",") if m.strip()]
    return [message_event(
        chat_id=chat, message_id=(root.findtext("MsgId") or "").strip(), sender_id=prefix + user,
        sender_name=(root.findtext("From/Name") or "").strip(), text=text, sent_at=at,
        mentions=[m for m in mentioned if m != prefix + "@all"], mentions_all=prefix + "@all" in mentioned,
        media_kind=media,
    )]


def _event(root: ET.Element, prefix: str, at: Any) -> list[RawEvent]:
    event = (root.findtext("Event") or "").strip() or (root.findtext("Event/EventType") or "").strip()
    if event != "change_external_chat":
        return []  # subscribe, enter_agent, add_to_chat…: nothing for the other services
    chat = (root.findtext("ChatId") or "").strip()
    detail = (root.findtext("UpdateDetail") or "").strip()
    members = [(i.text or "").strip() for i in root.iter("Item") if (i.text or "").strip()]
    if not chat:
        raise Unnormalisable("change_external_chat without ChatId")
    if detail == "add_member":
        return [RawEvent("chat.member.joined", chat, dict(member_id=prefix + m, joined_at=at)) for m in members]
    if detail == "del_member":
        return [RawEvent("chat.member.left", chat, dict(member_id=prefix + m, left_at=at)) for m in members]
    return []
