"""What a chat message means: commands (打卡/签到, 作业, 接龙, ?), links, mentions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Longest words first so "签到" is not read as something shorter; slash forms are the Telegram habit.
_COMMAND_WORDS: tuple[tuple[str, str], ...] = (
    ("打卡", "checkin"), ("签到", "checkin"), ("checkin", "checkin"),
    ("作业", "homework"), ("homework", "homework"),
    ("接龙", "signup_chain"), ("signup", "signup_chain"),
    ("ask", "question"),
)
_SEPARATORS = " \t\r\n:：,，、-—"
_LINK = re.compile(r"https?://[^\s<>\"'，。）)]+", re.IGNORECASE)


def parse_command(text: str) -> tuple[str, str] | None:
    """(command kind, argument) when the message is a command, else None.

    `打卡 第3天`, `#打卡`, `/checkin@my_bot 第3天`, `？怎么提交作业` all count; the command must lead.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0] in "?？":
        return "question", stripped[1:].strip()
    slash = stripped[0] in "/#"
    body = stripped[1:] if slash else stripped
    lowered = body.lower()  # once, not once per command word: most messages are no command at all
    for word, kind in _COMMAND_WORDS:
        if word.isascii() and not slash:
            continue  # a bare English word at the start of a message is chatter, not a command
        if lowered.startswith(word):
            rest = body[len(word):]
            if slash and rest.startswith("@"):  # /checkin@SomeBot 第5天
                rest = " " + (rest.split(maxsplit=1) + [""])[1]
            if word.isascii() and rest and rest[0] not in _SEPARATORS:
                continue  # "/checkinx" is not "/checkin"
            return kind, rest.strip(_SEPARATORS)
    return None


def find_links(text: str) -> list[str]:
    return _LINK.findall(text)[:50]


@dataclass
class RawEvent:
    """A platform event before the group is mapped to a community and the payload validated."""

    type: str
    chat_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    # For the names directory, not the contract: platform usernames of the people the event names
    # (person id → "dave" for Telegram's @dave), and @-names the text mentions that no id came with.
    usernames: dict[str, str] = field(default_factory=dict)
    mention_names: list[str] = field(default_factory=list)


def message_event(
    *, chat_id: str, message_id: str, sender_id: str, sender_name: str, text: str, sent_at: datetime,
    mentions: list[str] | None = None, mentions_all: bool = False, reply_to_message_id: str | None = None,
    reply_to_sender_id: str | None = None, media_kind: str = "none", forwarded: bool = False,
    sender_username: str = "", mention_names: list[str] | None = None,
) -> RawEvent:
    """A recognised command becomes `chat.command.issued` (only); anything else `chat.message.posted`."""
    usernames = {sender_id: sender_username} if sender_username and sender_id else {}
    command = parse_command(text) if text else None
    if command is not None:
        kind, argument = command
        return RawEvent("chat.command.issued", chat_id, dict(
            message_id=message_id, sender_id=sender_id, sender_name=sender_name, command=kind,
            argument=argument, sent_at=sent_at,
        ), usernames=usernames)
    return RawEvent("chat.message.posted", chat_id, dict(
        message_id=message_id, sender_id=sender_id, sender_name=sender_name, text=text,
        mentions=mentions or [], mentions_all=mentions_all, reply_to_message_id=reply_to_message_id,
        reply_to_sender_id=reply_to_sender_id, links=find_links(text), media_kind=media_kind,
        forwarded=forwarded, sent_at=sent_at,
    ), usernames=usernames, mention_names=[n for n in (mention_names or []) if n][:50])


class Unnormalisable(ValueError):
    """A verified payload we cannot turn into events; it goes to quarantine with this reason."""

    def __init__(self, reason: str) -> None:
        # The reason is stored as text: no NUL or lone surrogate from the payload may ride along in it.
        super().__init__(reason.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")[:2000])
