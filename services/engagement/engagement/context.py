"""What scoring and jobs need beyond the session: where events go and what metrics to count.

Replay runs with `outbox=None`: it rebuilds state without announcing anything again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.metrics import EngagementMetrics
from qunzhu_common.outbox import OutboxWriter


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
            await self.outbox.emit(session, type=type, community_id=community_id, data=data)


REPLAY = EngagementContext(outbox=None, metrics=None)
