"""Many events in one multi-row outbox insert: OutboxWriter.add, batched for the scheduler's bursts.

Each event is validated and routed by the same registry as OutboxWriter's; the rows are written in
the caller's transaction in the order they were added (so per-key order holds), and the relay is
woken once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.outbox import OutboxWriter, run_after_commit
from qunzhu_common.timeutil import utcnow


class OutboxBatch:
    def __init__(self, outbox: OutboxWriter, wake: Callable[[], None]) -> None:
        self._outbox = outbox
        self._wake = wake
        self._rows: list[dict] = []

    def emit(self, *, type: str, data: BaseModel, community_id: str) -> None:
        envelope = new_envelope(type=type, data=data, source=self._outbox.source, community_id=community_id)
        topic, key = self._outbox.registry.route(envelope)
        self._rows.append(
            dict(
                event_id=str(envelope.id),
                topic=topic,
                key=key,
                event_type=envelope.type,
                payload=envelope.to_bytes(),
                created_at=utcnow(),
            )
        )

    async def write(self, session: AsyncSession) -> int:
        """Stage the collected events in the session's transaction; returns how many."""
        rows, self._rows = self._rows, []
        if rows:
            await session.execute(insert(self._outbox.table), rows)
            run_after_commit(session, self._wake)
        return len(rows)
