"""Read deadlines for many requests on one timer.

The chat webhook answers 408 when a part of a body is late. `asyncio.timeout` around each read schedules and
cancels a timer handle per request — ≈ 3 % of the gateway's CPU under ingest load (#19's profile), for a
timer that almost never fires. Here a read only records its deadline (a dict entry) and one sweep, armed
while reads are pending, cancels the tasks past theirs; the read turns that cancellation into its own
error, as `asyncio.timeout` does. A deadline fires between `timeout_s` and `timeout_s` + one sweep period
(a quarter of the timeout, at most a second) late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

_MAX_PERIOD_S = 1.0
_MIN_PERIOD_S = 0.005


class ReadDeadlines:
    def __init__(self) -> None:
        self._pending: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def within(self, timeout_s: float, read: Callable[[], Awaitable[T]]) -> T:
        """`await read()`, raising TimeoutError when it has not returned within `timeout_s` (about)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        if self._timer is None or self._loop is not loop:  # armed on a loop since closed (tests): re-arm
            self._arm(loop, timeout_s)
        cancelling = task.cancelling()
        self._pending[task] = loop.time() + timeout_s
        try:
            return await read()
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                if task.uncancel() <= cancelling:  # our cancellation alone: a timeout, not a shutdown
                    raise TimeoutError from None
            raise
        finally:
            self._pending.pop(task, None)
            self._expired.discard(task)

    def _arm(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        period = min(_MAX_PERIOD_S, max(_MIN_PERIOD_S, timeout_s / 4))
        self._timer = loop.call_later(period, self._sweep, period)

    def _sweep(self, period: float) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for task, deadline in list(self._pending.items()):
            if deadline <= now:  # a pending read: the task waits inside `within`, so the cancellation lands there
                del self._pending[task]
                self._expired.add(task)
                task.cancel()
        if self._pending:
            self._timer = loop.call_later(period, self._sweep, period)
