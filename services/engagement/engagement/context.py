"""What scoring and jobs need beyond the session: where events go and what metrics to count.

Replay runs with `outbox=None`: it rebuilds state without announcing anything again.

In a consumer's transaction (deferrable, see qunzhu_common.unit_of_work) the events engagement emits
are staged and written with ONE multi-row outbox insert before the commit, in the order they were
emitted — a consumed batch that warns a hundred members writes one statement, not a hundred.
Elsewhere (API requests, jobs) they are written at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.metrics import EngagementMetrics
from qunzhu_common.events.envelope import Envelope, new_envelope
from qunzhu_common.outbox import OutboxWriter
from qunzhu_common.unit_of_work import defer, deferrable

_STAGED = "engagement.outbox"  # session.info key of the envelopes staged for the end of the transaction


@dataclass
class EngagementContext:
    outbox: OutboxWriter | None
    metrics: EngagementMetrics | None = None
    hooks: bool = True  # False while recomputing: challenges, goals… already reacted the first time

    @property
    def live(self) -> bool:
        return self.outbox is not None

    async def emit(self, session: AsyncSession, *, type: str, community_id: str, data: BaseModel) -> None:
        if self.outbox is not None:
            await self.stage(session, [new_envelope(type=type, data=data, source=self.outbox.source,
                                                    community_id=community_id)])

    async def stage(self, session: AsyncSession, envelopes: list[Envelope]) -> None:
        """Write the events to the outbox in this transaction: at its end when it is deferrable (one
        statement for all, in emission order), else now."""
        if self.outbox is None or not envelopes:
            return
        if not deferrable(session):
            await self.outbox.add_many(session, envelopes)
            return
        session.info.setdefault(_STAGED, []).extend(envelopes)
        defer(session, _STAGED, self._write_staged)

    async def _write_staged(self, session: AsyncSession) -> None:
        assert self.outbox is not None
        await self.outbox.add_many(session, session.info.pop(_STAGED, []))


def staged_mark(session: AsyncSession) -> int:
    """How many events are staged so far (see `drop_staged_after`)."""
    return len(session.info.get(_STAGED, ()))


def drop_staged_after(session: AsyncSession, mark: int) -> None:
    """Forget the events staged after `mark`: the savepoint that emitted them was rolled back."""
    staged = session.info.get(_STAGED)
    if staged is not None:
        del staged[mark:]


REPLAY = EngagementContext(outbox=None, metrics=None)
