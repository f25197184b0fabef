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
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from qunzhu_common.db.transient import as_dbapi_error

log = logging.getLogger(__name__)

T = TypeVar("T")


class FallBack(Exception):  # noqa: N818 - a decision, not an error
    """Raised by a fast flush for a batch it cannot write: rolled back, then written by the general flush."""


class FastFlush(Protocol[T]):
    """A flush on the driver's own connection (asyncpg), inside a transaction the committer opens."""

    after_commit: Callable[[], None] | None
    begin: str  # the statements that open its transaction ("BEGIN", and SET LOCAL … if it wants any)

    def accepts(self, batch: Sequence[T]) -> bool: ...

    async def __call__(self, connection: Any, batch: Sequence[T]) -> Sequence[Any]: ...

# A writer that takes only what is queued when it wakes oscillates: the first request after a commit is
# written alone while the rest of the callers queue behind it (batches of 1, 15, 1, 15 … at 16 callers,
# half the commits for one delivery). It waits instead while loop turns keep bringing requests, at most
# LINGER_TURNS turns without a new one and never past LINGER_S: all batches of 16, +21 % deliveries/s.
LINGER_TURNS = 6
LINGER_S = 0.002
Flush = Callable[[AsyncSession, Sequence[T]], Awaitable[Sequence[Any]]]


class GroupCommitter(Generic[T]):
    def __init__(
        self, session_maker: async_sessionmaker[AsyncSession], flush: Flush[T], *, max_batch: int = 200,
        writers: int = 1, engine: AsyncEngine | None = None, linger_turns: int = LINGER_TURNS,
        linger_s: float = LINGER_S, fast: FastFlush[T] | None = None,
    ) -> None:
        self._session_maker = session_maker
        self._engine = engine
        self._flush = flush
        self._fast = fast if engine is not None else None
        self._max_batch = max_batch
        self._writers = max(1, writers)
        self._linger_turns, self._linger_s = linger_turns, linger_s
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
                opening = await self._open_early(held)
                try:
                    await self._gather(batch)
                    await self._commit(batch, held, opening)
                except asyncio.CancelledError:
                    if opening is not None:
                        opening.cancel()
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

    async def _gather(self, batch: list[tuple[T, asyncio.Future[Any]]]) -> None:
        """Add what is queued, lingering a few loop turns for the requests already being read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._linger_s
        idle = 0
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                idle = 0
                continue
            if idle >= self._linger_turns or loop.time() >= deadline:
                return
            idle += 1
            await asyncio.sleep(0)

    async def _open_early(self, held: _Held) -> asyncio.Future[Any] | None:
        """The fast path's BEGIN, sent as the batch starts: its round trip overlaps the gathering (the other
        callers' requests being read) instead of adding to every batch's wait (#19)."""
        if self._fast is None:
            return None
        try:
            driver = await held.driver()
            if driver is None:
                return None
        except Exception:  # noqa: BLE001 - the batch's own attempt reports it
            return None
        opening = asyncio.ensure_future(driver.execute(self._fast.begin))
        opening.add_done_callback(_retrieved)  # an attempt that fails before awaiting it reports the error itself
        return opening

    async def _commit(self, batch: list[tuple[T, asyncio.Future[Any]]], held: _Held,
                      opening: asyncio.Future[Any] | None = None, *, again_if_stale: bool = True) -> None:
        stale = False
        try:
            connection = await held.connection()
            stale = held.kept  # the connection already served a batch: the database may have dropped it since
            items = [item for item, _ in batch]
            results = None
            if connection is not None and self._fast is not None:
                results = await self._commit_fast(await held.driver(), items, opening)
            if results is None:
                maker = self._session_maker if connection is None else functools.partial(
                    self._session_maker, bind=connection)
                async with maker() as session, session.begin():
                    results = await self._flush(session, items)
        except Exception as exc:
            await held.release()  # whatever failed, the next batch starts on a fresh connection
            if stale and again_if_stale:
                # A kept connection the server closed meanwhile (a restart, a failover, an idle reaper) fails
                # whatever the batch holds, and a lone webhook would get it as an error: the batch again, once,
                # on a fresh connection, before it is split or answered with the error.
                log.info("a batch of %d failed on a kept connection (%s); writing it again on a fresh one",
                         len(batch), str(exc).split("\n", 1)[0][:200])
                await self._commit(batch, held, again_if_stale=False)
                return
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.warning("a batch of %d failed; writing its items one by one", len(batch), exc_info=True)
            for entry in batch:
                await self._commit([entry], held)
            return
        held.kept = connection is not None
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _commit_fast(self, driver: Any, items: list[T],
                           opening: asyncio.Future[Any] | None) -> Sequence[Any] | None:
        """The batch on the driver's connection in its own transaction (`opening`: its BEGIN, already sent);
        None when it needs the general path, the transaction rolled back."""
        assert self._fast is not None
        try:
            if opening is not None:
                await opening
            if not self._fast.accepts(items):
                if opening is not None:
                    await driver.execute("ROLLBACK")
                return None
            if opening is None:
                await driver.execute(self._fast.begin)  # one round trip, settings of the transaction included
            try:
                results = await self._fast(driver, items)
            except BaseException:
                await asyncio.shield(driver.execute("ROLLBACK"))
                raise
            await driver.execute("COMMIT")
        except FallBack:
            return None
        except Exception as exc:
            wrapped = as_dbapi_error(exc)
            if wrapped is exc:
                raise
            raise wrapped from exc
        if self._fast.after_commit is not None:
            self._fast.after_commit()
        return results

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
        self._driver: Any = None  # the driver's own connection under it, looked up once
        self.kept = False  # the current connection has committed a batch (set by the committer)

    async def connection(self) -> AsyncConnection | None:
        if self._engine is None:
            return None
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection, self._driver, self.kept = await self._engine.connect(), None, False
        return self._connection

    async def driver(self) -> Any:
        """The driver (asyncpg) connection of `connection()`; None without an engine."""
        connection = await self.connection()
        if connection is None:
            return None
        if self._driver is None:
            self._driver = (await connection.get_raw_connection()).driver_connection
        return self._driver

    async def release(self) -> None:
        connection, self._connection, self._driver, self.kept = self._connection, None, None, False
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection is discarded by the pool anyway
                await asyncio.shield(connection.close())


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved: the batch's own attempt has reported it, or will
