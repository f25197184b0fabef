"""One shape for the services' background loops: the outbox relay, content's scheduler and broadcast
dispatcher, the gateway's bot-action and refund workers.

A pass returns how long to wait before the next one: 0 runs it again at once (more work is waiting),
otherwise the loop sleeps that long or until `wake()`. The wake-up is cleared *before* each pass, so one
that arrives during a pass (a write committed meanwhile) starts the next pass at once instead of a poll
later. A pass that raises is logged and retried with exponential backoff; cancellation stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from qunzhu_common.db.writegate import mark_background

log = logging.getLogger(__name__)


class BackgroundLoop:
    def __init__(
        self,
        name: str,
        run_pass: Callable[[], Awaitable[float]],
        *,
        logger: logging.Logger = log,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        traceback: bool = False,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self._run_pass = run_pass
        self._log = logger
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._traceback = traceback  # log the stack of a failed pass (worth it where failures mean bugs)
        self._on_failure = on_failure
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        mark_background()  # this task's transactions queue behind requests for SQLite's write connection
        failures = 0
        while True:
            self._wake.clear()
            try:
                delay = await self._run_pass()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # A library turned the cancellation into an error of its own (SQLAlchemy: a statement
                    # interrupted mid-way leaves PendingRollbackError behind): stop, as asked.
                    raise asyncio.CancelledError from exc
                failures += 1
                self._log.warning("%s failed (%d in a row): %r", self.name, failures, exc, exc_info=self._traceback)
                if self._on_failure is not None:
                    self._on_failure(exc)
                await asyncio.sleep(min(self._max_backoff_s, self._backoff_s * 2**failures))
                continue
            if delay <= 0:
                await asyncio.sleep(0)  # let the rest of the process run between busy passes
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives
            # once the wake-up is already set, and the loop then never stops.
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
