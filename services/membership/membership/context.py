"""What service functions need besides the session: outbox, clock, settings, business metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from membership.clock import Clock, system_clock
from membership.metrics import MembershipMetrics
from membership.settings import MembershipSettings
from qunzhu_common.outbox import OutboxWriter


@dataclass
class MembershipContext:
    settings: MembershipSettings
    clock: Clock = system_clock
    # Set when the app is built (the runtime owns both).
    outbox: OutboxWriter = field(default=None)  # type: ignore[assignment]
    metrics: MembershipMetrics = field(default=None)  # type: ignore[assignment]

    def now(self) -> datetime:
        return self.clock()
