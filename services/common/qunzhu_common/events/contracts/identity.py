"""How services name people and chat groups without sharing tables.

A person on a chat platform is `"<platform>:<platform user id>"` (e.g. `telegram:12345`); a chat group
is `"<platform>:<platform chat id>"` (e.g. `wecom:wrOgQhDgAAcwMTB7YmDkbeBsgT_AAAAA`). The gateway builds
them when normalising webhooks, membership keeps the member and group records under them, and every
other service refers to people and groups by them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

Platform = Literal["telegram", "wecom", "wechat", "qq", "discord", "generic"]

PLATFORMS: tuple[str, ...] = ("telegram", "wecom", "wechat", "qq", "discord", "generic")

# A platform user id never holds whitespace or control characters: an id with a space, a NUL or a line
# break is forged or garbled (it would also break logs, CSV exports and the lottery's newline-joined list).
PERSON_ID_PATTERN = r"^[a-z]+:[^\s\x00-\x1f\x7f-\x9f]+$"
PersonId = Annotated[str, StringConstraints(min_length=3, max_length=200, pattern=PERSON_ID_PATTERN)]
"""`<platform>:<user id>`: the one type for every request field and event field that names a person."""
GroupId = Annotated[str, StringConstraints(min_length=3, max_length=200, pattern=r"^[a-z]+:.+$")]


def person_id(platform: str, user_id: str | int) -> str:
    return f"{platform}:{user_id}"


def group_id(platform: str, chat_id: str | int) -> str:
    return f"{platform}:{chat_id}"
