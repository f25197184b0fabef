"""Per-member serialisation across topics.

A member's chat activity (chat.events.v1) and the event that makes them known (membership.events.v1)
are consumed concurrently. Without a lock, an activity could be kept as pending just as the member
becomes known, and the member's transaction (not seeing the uncommitted activity) would leave it
pending forever. Once the community exists, its row lock (engine.locked_community) orders the two;
before that, both take this transaction-scoped lock. SQLite needs none: BEGIN IMMEDIATE already
serialises every writer.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


def _key(community_id: str, person_id: str) -> int:
    digest = hashlib.blake2b(f"{community_id}\x00{person_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_member(session: AsyncSession, *, community_id: str, person_id: str) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_key(community_id, person_id))))
