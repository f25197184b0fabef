"""Group commit: the items that arrive together are written in one transaction, and each caller is
answered only after that transaction committed.

One transaction per request would make every webhook pay a BEGIN/COMMIT and, on SQLite, wait for the
single write lock in turn. Here a single writer drains what is queued (up to `max_batch`), hands the
batch to `flush` (which returns one result per item), commits once, then resolves every waiting caller.
If a batch fails as a whole, its items are retried one by one so one bad item cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")
Flush = Callable[[AsyncSession, Sequence[T]], Awaitable[Sequence[Any]]]


class GroupCommitter(Generic[T]):
    def __init__(
        self, session_maker: async_sessionmaker[AsyncSession], flush: Flush[T], *, max_batch: int = 200
    ) -> None:
        self._session_maker = session_maker
        self._flush = flush
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> Any:
        """Write `item` in the next batch; returns its result once the batch committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise

    async def _commit(self, batch: list[tuple[T, asyncio.Future[Any]]]) -> None:
        try:
            async with self._session_maker() as session, session.begin():
                results = await self._flush(session, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.warning("a batch of %d failed; writing its items one by one", len(batch), exc_info=True)
            for entry in batch:
                await self._commit([entry])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():
            self._queue.get_nowait()[1].cancel()
