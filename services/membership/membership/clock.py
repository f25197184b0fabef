"""The service's notion of "now", injectable so tests can move time (expiry, windows, reminders)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from qunzhu_common.timeutil import ensure_aware, utcnow

Clock = Callable[[], datetime]

system_clock: Clock = utcnow


class FakeClock:
    """A clock that stands still until told to move (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start)

    def __call__(self) -> datetime:
        return self._now

    def set(self, value: datetime) -> None:
        self._now = ensure_aware(value)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now
