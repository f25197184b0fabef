"""Group commit: the items that arrive together are written in one transaction, and each caller is
answered only after that transaction committed.

One transaction per request would make every webhook pay a BEGIN/COMMIT and, on SQLite, wait for the
single write lock in turn. Here a single writer drains what is queued (up to `max_batch`), hands the
batch to `flush` (which returns one result per item), commits once, then resolves every waiting caller.
If a batch fails as a whole, its items are retried one by one so one bad item cannot fail its neighbours.

Given `engine` (PostgreSQL), each writer keeps one connection between batches instead of taking one from
the pool per batch: the pool's checkout, its liveness ping (a round trip) and its checkin were a third of a
batch's cost (issue #19's profile). A batch that fails gives the connection back (the next one takes a
fresh, pinged one). The writer does no network I/O of its own while holding it. Not on SQLite, whose one
write connection is shared through the write gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")
Flush = Callable[[AsyncSession, Sequence[T]], Awaitable[Sequence[Any]]]


class GroupCommitter(Generic[T]):
    def __init__(
        self, session_maker: async_sessionmaker[AsyncSession], flush: Flush[T], *, max_batch: int = 200,
        writers: int = 1, engine: AsyncEngine | None = None,
    ) -> None:
        self._session_maker = session_maker
        self._engine = engine
        self._flush = flush
        self._max_batch = max_batch
        self._writers = max(1, writers)
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, item: T) -> Any:
        """Write `item` in the next batch; returns its result once the batch committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self) -> None:
        held = _Held(self._engine)
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    await self._commit(batch, held)
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - a writer that died would leave every later caller waiting
                    log.exception("group commit: a batch of %d could not be answered", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
        finally:
            await held.release()

    async def _commit(self, batch: list[tuple[T, asyncio.Future[Any]]], held: _Held) -> None:
        try:
            connection = await held.connection()
            maker = self._session_maker if connection is None else functools.partial(
                self._session_maker, bind=connection)
            async with maker() as session, session.begin():
                results = await self._flush(session, [item for item, _ in batch])
        except Exception as exc:
            await held.release()  # whatever failed, the next batch starts on a fresh connection
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.warning("a batch of %d failed; writing its items one by one", len(batch), exc_info=True)
            for entry in batch:
                await self._commit([entry], held)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"group-commit-{n}") for n in range(self._writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():
            self._queue.get_nowait()[1].cancel()


class _Held:
    """One writer's connection, kept between its batches (PostgreSQL); None without an engine."""

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def connection(self) -> AsyncConnection | None:
        if self._engine is None:
            return None
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection = await self._engine.connect()
        return self._connection

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection is discarded by the pool anyway
                await asyncio.shield(connection.close())
