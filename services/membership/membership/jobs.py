"""The scheduler: a lifespan-owned asyncio task that expires memberships, sends reminders, applies the
unpaid-join policy, settles campaigns and refreshes the gauges, every `scheduler_interval_s`.

Each kind of work runs in its own transactions of at most `scheduler_batch_size` claimed rows (see
service/expiry.py for the claims and the misfire policy), so several replicas can run it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from membership.context import MembershipContext
from membership.models import Membership
from membership.service import expiry, fission, reconcile
from qunzhu_common.context import correlation_id_var
from qunzhu_common.db.writegate import background_priority

log = logging.getLogger(__name__)

Work = Callable[[AsyncSession, MembershipContext], Awaitable["int | expiry.Batch"]]


class Scheduler:
    def __init__(self, ctx: MembershipContext, session_maker: async_sessionmaker[AsyncSession]) -> None:
        self.ctx = ctx
        self.session_maker = session_maker
        limit = ctx.settings.scheduler_batch_size
        self.work: list[tuple[str, Work]] = [
            ("expire", lambda s, c: expiry.expire_due(s, c, limit=limit)),
            ("remind", lambda s, c: expiry.send_due_reminders(s, c, limit=limit)),
            ("unpaid_joins", lambda s, c: reconcile.sweep_flags(s, c, limit=limit)),
            ("campaigns", lambda s, c: fission.check_campaigns(s, c, limit=limit)),
        ]
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, int]:
        """One pass over every kind of work, until each has nothing due (tests call this directly)."""
        token = correlation_id_var.set(f"scheduler-{self.ctx.now().isoformat()}")
        done: dict[str, int] = {}
        try:
            for name, work in self.work:
                done[name] = await self._drain(name, work)
            await self.refresh_gauges()
        finally:
            correlation_id_var.reset(token)
        return done

    async def _drain(self, name: str, work: Work) -> int:
        total = 0
        for _ in range(1000):  # bounded: a pass always ends
            try:
                async with self.session_maker() as session, session.begin():
                    result = await work(session, self.ctx)
            except (IntegrityError, DBAPIError) as exc:
                # Another replica handled the same row first (unique key) or a lock timed out: next pass.
                log.warning("scheduler %s: batch rolled back (%s: %s); retried next pass", name, type(exc).__name__,
                            str(exc).splitlines()[0][:200])
                break
            claimed, done = (result.claimed, result.done) if isinstance(result, expiry.Batch) else (result, result)
            total += done
            if claimed < self.ctx.settings.scheduler_batch_size:
                break
        return total

    async def refresh_gauges(self) -> None:
        async with self.session_maker() as session:
            rows = (await session.execute(
                select(Membership.status, func.count()).group_by(Membership.status)
            )).all()
        counts = dict(rows)
        for status in ("applied", "rejected", "pending_payment", "pending_ritual", "active", "expired", "removed",
                       "blacklisted", "paused"):
            self.ctx.metrics.members.labels(status).set(int(counts.get(status, 0)))
        self.ctx.metrics.applications_pending.set(int(counts.get("applied", 0)))

    async def run(self) -> None:
        interval = self.ctx.settings.scheduler_interval_s
        while True:
            try:
                await self.run_once()
                self.ctx.metrics.scheduler_runs.labels("ok").inc()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed")
                self.ctx.metrics.scheduler_runs.labels("failed").inc()
            await asyncio.sleep(interval)

    def start(self) -> None:
        if self._task is None:
            with background_priority():  # its transactions queue behind requests for SQLite's writer (#19)
                self._task = asyncio.create_task(self.run(), name="membership-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def scheduler_lifespan(ctx: MembershipContext):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = app.state.runtime
        scheduler = Scheduler(ctx, runtime.session_maker)
        app.state.scheduler = scheduler
        if ctx.settings.run_scheduler:
            scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()

    return lifespan
