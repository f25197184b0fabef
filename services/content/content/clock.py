"""The service's notion of now, injectable so tests can move time instead of waiting for it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from qunzhu_common.timeutil import ensure_aware, utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, value: datetime) -> None:
        self._now = ensure_aware(value)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now
