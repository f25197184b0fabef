"""Work a handler hands to the end of its transaction, so that a consumed batch does it once for many events.

The event consumer opens a transaction for one event or for a whole batch of a partition, marks it
deferrable, runs the handlers, then awaits `run_deferred` before committing. A handler that can gain
from seeing the whole batch (engagement's scorer: one read of caps and cooldowns, multi-row writes)
queues its work under a key instead of doing it at once. Outside a consumer (API requests, jobs) the
session is not deferrable and the caller does the work immediately, so nothing queued is ever dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

_DEFERRABLE = "qunzhu.deferrable"
_DEFERRED = "qunzhu.deferred"

Deferred = Callable[[AsyncSession], Awaitable[None]]


def mark_deferrable(session: AsyncSession) -> None:
    """Declare that whoever owns this transaction awaits `run_deferred` before it commits."""
    session.info[_DEFERRABLE] = True


def deferrable(session: AsyncSession) -> bool:
    return bool(session.info.get(_DEFERRABLE))


def defer(session: AsyncSession, key: str, work: Deferred) -> None:
    """Run `work(session)` before the commit; one `work` per key (the first one registered)."""
    if not deferrable(session):
        raise RuntimeError("defer() outside a deferrable unit of work: do the work now instead")
    session.info.setdefault(_DEFERRED, {}).setdefault(key, work)


def take_deferred(session: AsyncSession, key: str) -> Deferred | None:
    """Remove and return the work queued under `key` (to run it early, e.g. before reading its result)."""
    return session.info.get(_DEFERRED, {}).pop(key, None)


async def run_deferred(session: AsyncSession) -> None:
    """Run queued work in registration order until none is left (work may queue more)."""
    queued: dict[str, Deferred] = session.info.get(_DEFERRED, {})
    while queued:
        key = next(iter(queued))
        await queued.pop(key)(session)
