"""Names, not ids, in the group: bot messages are rendered at send time from the names directory.

Services write `{person:<id>}` (a name) and `{mention:<id>}` (a mention that notifies) into a bot
action's text (qunzhu_common.events.contracts.chat.PERSON_TOKEN); they never know names. Here each
token becomes the name the platform last reported for that person in the action's group (else in another
group of theirs, else a masked id such as `telegram:19…88`), and the request gains `segments` (text and
mention pieces, with the platform user id) for the executors: Telegram sends mentions as
`<a href="tg://user?id=…">` (HTML parse mode), WeCom's robot lists them in `mentioned_list`, QQ OneBot
makes `at` segments, bridges get the segments as they are.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.chatdir.models import ChatName

TOKEN = re.compile(r"\{(person|mention):([a-z]+:[^\s{}]{1,190})\}")


def mask(person_id: str) -> str:
    """`telegram:1910239988` → `telegram:19…88`: enough to tell people apart, not to look them up."""
    platform, _, user = person_id.partition(":")
    shown = f"{user[:2]}…{user[-2:]}" if len(user) > 4 else f"{user[:1]}…"
    return f"{platform}:{shown}"


async def names_for(session: AsyncSession, group_id: str, people: set[str]) -> dict[str, str]:
    """person id → the name to show in `group_id`: that group's name first, else their latest elsewhere."""
    if not people:
        return {}
    rows = (await session.execute(select(ChatName).where(ChatName.person_id.in_(sorted(people))).order_by(
        ChatName.updated_at.desc(), ChatName.group_id))).scalars().all()
    found: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.group_id != group_id):  # stable: the group's own row first
        name = row.display_name or row.username
        if name and row.person_id not in found:
            found[row.person_id] = name
    return found


async def render(session: AsyncSession, request: dict[str, Any]) -> dict[str, Any]:
    """The request with its tokens replaced in `text` and, when it had any, `segments` and `mentions`."""
    text = str(request.get("text") or "")
    matches = list(TOKEN.finditer(text))
    if not matches:
        return request
    names = await names_for(session, str(request.get("group_id", "")), {m.group(2) for m in matches})
    segments: list[dict[str, Any]] = []
    plain: list[str] = []
    position = 0
    for match in matches:
        if match.start() > position:
            segments.append({"type": "text", "text": text[position:match.start()]})
        kind, person = match.groups()
        name = names.get(person) or mask(person)
        if kind == "mention":
            segments.append({"type": "mention", "person_id": person, "user_id": person.partition(":")[2],
                             "name": name, "text": "@" + name})
        else:
            segments.append({"type": "text", "text": name})
        position = match.end()
    if position < len(text):
        segments.append({"type": "text", "text": text[position:]})
    plain = [s["text"] for s in segments]
    mentions = list(dict.fromkeys(s["person_id"] for s in segments if s["type"] == "mention"))
    return {**request, "text": "".join(plain), "segments": segments, "mentions": mentions}
