"""chat.mention.resolved (#17): an @-name the gateway resolves after the message still counts as a
mention of that person in the key-people graph, once."""

from __future__ import annotations

from datetime import timedelta

from conftest import GROUP, T0

from engagement.jobs.keypeople import interaction_edges
from qunzhu_common.events.contracts.chat import ChatMentionResolved

A, B, C = "telegram:1", "telegram:2", "telegram:3"


async def edges(engagement, cid: str) -> list[tuple[str, str, str]]:
    async with engagement.runtime.session_maker() as session:
        return await interaction_edges(session, community_id=cid, start=T0 - timedelta(days=1),
                                       end=T0 + timedelta(days=1))


async def test_a_late_resolved_mention_joins_its_message_once(engagement):
    cid = await engagement.community()
    for person in (A, B, C):
        await engagement.member(cid, person)
    await engagement.message(cid, A, "谢谢 @dave 和 @carol", T0, message_id="m-9", mentions=[B])

    resolved = ChatMentionResolved(platform="telegram", group_id=GROUP, delivery_id="update:12", message_id="m-9",
                                   sender_id=A, mentioned_id=C, name="carol", resolved_at=T0 + timedelta(hours=1))
    await engagement.feed("chat.mention.resolved", resolved, community_id=cid)
    await engagement.feed("chat.mention.resolved", resolved, community_id=cid)  # another event id, same fact

    assert sorted(e for e in await edges(engagement, cid) if e[2] == "mention") == [
        (A, B, "mention"), (A, C, "mention")]
