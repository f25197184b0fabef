"""What content's routes, handlers and workers share beyond the common runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from content.clock import Clock
from content.metrics import ContentMetrics
from content.outbox_batch import OutboxBatch
from content.settings import ContentSettings
from qunzhu_common.outbox import OutboxWriter, run_after_commit


def _noop() -> None:
    return None


@dataclass
class ContentContext:
    settings: ContentSettings
    clock: Clock
    metrics: ContentMetrics
    outbox: OutboxWriter = field(default=None)  # type: ignore[assignment]  # set once the runtime exists
    wake_scheduler: Callable[[], None] = _noop
    wake_dispatcher: Callable[[], None] = _noop
    wake_relay: Callable[[], None] = _noop
    replica: str = "content"

    def batch(self) -> OutboxBatch:
        """An outbox batch of this service (one multi-row insert for many events)."""
        return OutboxBatch(self.outbox, self.wake_relay)

    def after_commit_wake_dispatcher(self, session: AsyncSession) -> None:
        """New deliveries: let the fan-out run as soon as they are committed, not at its next poll."""
        run_after_commit(session, self.wake_dispatcher)

    def after_commit_wake_scheduler(self, session: AsyncSession) -> None:
        run_after_commit(session, self.wake_scheduler)
