"""Embedded mode's SQLite writer: one at a time, requests before background work, FIFO, a bounded wait.

SQLite has one write lock per file, and every write transaction takes it up front (BEGIN IMMEDIATE), so
the write engine pools a single connection. Who gets it next is decided here, not by the pool's queue:

- **priority**: a request (an API call, the gateway's webhook ingest) goes before any waiting background
  work (the outbox relay, event consumers, schedulers, bot-action and refund workers). Background code marks
  its task with `background_priority()` (BackgroundLoop and the event consumer do); everything else is a
  request. A stalled background job then delays only background jobs queued behind it; a request waits
  at most for the one transaction in progress.
- **fairness**: within a priority, first come, first served.
- **bounded wait**: a request waits at most `request_wait_s` (setting `SQLITE_WRITE_WAIT_S`, 5 s — far below
  a chat platform's webhook timeout); past it, `WriteWaitTimeout` (a pool timeout, so `is_transient`) is
  answered 503 problem+json with Retry-After, and the platform retries. Background work waits longer.

The gate sits in the pool (`gated_pool_class`): the connection is granted at checkout and given back at
checkin, whatever the session does in between.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only

REQUEST = "request"
BACKGROUND = "background"
PRIORITIES = (REQUEST, BACKGROUND)

_priority: ContextVar[str] = ContextVar("qunzhu_db_priority", default=REQUEST)


def mark_background() -> None:
    """The current task (and the tasks it starts) is background work for the write gate."""
    _priority.set(BACKGROUND)


@contextmanager
def background_priority() -> Iterator[None]:
    token = _priority.set(BACKGROUND)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> str:
    return _priority.get()


class WriteWaitTimeout(PoolTimeout):
    """The write connection was not free within the bounded wait (transient: answered 503, retried)."""


class WriteGate:
    def __init__(
        self,
        *,
        request_wait_s: float = 5.0,
        background_wait_s: float = 30.0,
        on_wait: Callable[[str, float], None] | None = None,
        on_timeout: Callable[[str], None] | None = None,
    ) -> None:
        self.waits = {REQUEST: request_wait_s, BACKGROUND: background_wait_s}
        self._on_wait = on_wait
        self._on_timeout = on_timeout
        self._held = False
        self._queues: dict[str, deque[asyncio.Future[None]]] = {p: deque() for p in PRIORITIES}

    @property
    def held(self) -> bool:
        return self._held

    def waiting(self, priority: str) -> int:
        return sum(1 for f in self._queues[priority] if not f.done())

    async def acquire(self) -> None:
        priority = _priority.get()
        started = time.monotonic()
        if not self._held and not any(self.waiting(p) for p in PRIORITIES):
            self._held = True
            self._observe(priority, 0.0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append(future)
        try:
            await asyncio.wait({future}, timeout=self.waits[priority])
        except BaseException:  # cancelled while waiting: give back a grant that raced the cancellation
            self._abandon(future)
            raise
        if not future.done():
            self._abandon(future)
            if self._on_timeout is not None:
                self._on_timeout(priority)
            raise WriteWaitTimeout(
                f"the database's write connection was busy for {self.waits[priority]:.1f}s ({priority})")
        self._observe(priority, time.monotonic() - started)

    def _abandon(self, future: asyncio.Future[None]) -> None:
        if future.done() and not future.cancelled():
            self.release()  # it was handed to us: pass it on
        else:
            future.cancel()

    def release(self) -> None:
        for priority in PRIORITIES:
            queue = self._queues[priority]
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # handed over: stays held
                    return
        self._held = False

    def _observe(self, priority: str, seconds: float) -> None:
        if self._on_wait is not None:
            self._on_wait(priority, seconds)


class _GatedPool(AsyncAdaptedQueuePool):
    gate: WriteGate

    def _do_get(self) -> Any:
        await_only(self.gate.acquire())
        try:
            return super()._do_get()
        except BaseException:
            self.gate.release()
            raise

    def _do_return_conn(self, record: Any) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            self.gate.release()


def gated_pool_class(gate: WriteGate) -> type[AsyncAdaptedQueuePool]:
    """A pool class bound to `gate` (a class, so that `engine.dispose()`'s re-created pool keeps it)."""
    # Logged under sqlalchemy.pool like SQLAlchemy's own pools (quiet unless asked), not under this module.
    return type("GatedPool", (_GatedPool,), {"gate": gate, "__module__": "sqlalchemy.pool.impl"})
