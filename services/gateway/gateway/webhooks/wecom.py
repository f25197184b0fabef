"""WeCom callbacks → raw chat events: group robot messages (群机器人回调) and customer-group changes from the
self-built app's callback (change_external_chat: create, update add_member / del_member with JoinScene /
QuitScene, dismiss). Payloads are XML; entity declarations are refused. WeCom expects an empty body (or
"success") when there is no passive reply, which is how the gateway answers its callbacks."""

from __future__ import annotations

import re
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
        media_kind=media, mention_names=_at_names(text),
    )]


# WeCom writes a mention as "@<name>" followed by a four-per-em space (U+2005); the names directory turns the
# name into the person (the ids in MentionedList, when WeCom sends one, are taken as they are).
_AT_NAME = re.compile(r"@([^\s@\u2005]{1,64})")


def _at_names(text: str) -> list[str]:
    return [name for name in _AT_NAME.findall(text) if name.lower() != "all"][:20]


# 客户群变更事件 (change_external_chat), from the self-built app's callback: JoinScene 0 invited directly,
# 1 through an invite link, 3 by scanning the group QR code; QuitScene 0 left, 1 removed by the owner/an admin.
_JOIN_SCENES = {"0": "invite", "1": "invite_link", "3": "qr_code"}
_QUIT_SCENES = {"0": "left", "1": "removed"}


def _event(root: ET.Element, prefix: str, at: Any) -> list[RawEvent]:
    event = (root.findtext("Event") or "").strip() or (root.findtext("Event/EventType") or "").strip()
    if event != "change_external_chat":
        return []  # subscribe, enter_agent, add_to_chat…: nothing for the other services
    chat = (root.findtext("ChatId") or "").strip()
    if not chat:
        raise Unnormalisable("change_external_chat without ChatId")
    change = (root.findtext("ChangeType") or "update").strip()
    if change == "create":
        return [RawEvent("chat.group.created", chat, dict(created_at=at))]
    if change == "dismiss":
        return [RawEvent("chat.group.dismissed", chat, dict(dismissed_at=at))]
    if change != "update":
        raise Unnormalisable(f"change_external_chat with ChangeType {change[:40]!r}")
    detail = (root.findtext("UpdateDetail") or "").strip()
    members = [(i.text or "").strip() for i in root.iterfind("MemChangeList/Item") if (i.text or "").strip()]
    if not members:  # older callbacks list the members without the MemChangeList wrapper
        members = [(i.text or "").strip() for i in root.iter("Item") if (i.text or "").strip()]
    if detail == "add_member":
        via = _JOIN_SCENES.get((root.findtext("JoinScene") or "").strip())
        return [RawEvent("chat.member.joined", chat, dict(member_id=prefix + m, joined_via=via, joined_at=at))
                for m in members]
    if detail == "del_member":
        via = _QUIT_SCENES.get((root.findtext("QuitScene") or "").strip())
        return [RawEvent("chat.member.left", chat, dict(member_id=prefix + m, left_via=via, left_at=at))
                for m in members]
    return []  # change_owner, change_name, change_notice: nothing the services keep
