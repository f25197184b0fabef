"""Deadlines and reminders of activities: due polls close, meetups are reminded, anniversaries celebrated.

Runs every `activities_interval_s` in one replica (like engagement's jobs); each step is idempotent
(a claimed row or a unique celebration), so a second runner or a rerun does nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities import campaigns, celebrations, meetups, polls
from engagement.context import EngagementContext
from qunzhu_common.db.writegate import background_priority
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)

Step = Callable[[AsyncSession, EngagementContext, datetime], Awaitable[int]]


def _steps() -> dict[str, Step]:
    return {
        "polls": lambda s, c, now: polls.close_due(s, c, now=now),
        "campaigns": lambda s, c, now: campaigns.check_due(s, c, now=now),
        "meetup_reminders": lambda s, c, now: meetups.remind_due(s, c, now=now),
        "anniversaries": lambda s, c, now: celebrations.anniversaries(s, c, now=now),
    }


# Anniversaries read every active member: once an hour is enough (the others are cheap, indexed reads).
SLOW_STEPS = {"anniversaries": 3600.0}


async def run_due(app: FastAPI, *, now: datetime | None = None, skip: frozenset[str] = frozenset()
                  ) -> dict[str, int]:
    """Run every due step once, each in its own transaction; returns how much each did."""
    runtime, ctx = app.state.runtime, app.state.engagement
    done: dict[str, int] = {}
    for name, step in _steps().items():
        if name in skip:
            continue
        try:
            async with runtime.session_maker() as session, session.begin():
                done[name] = await step(session, ctx, now or utcnow())
        except Exception:  # one failing step must not stop the others
            log.exception("activities timer %s failed", name)
    return done


def timer(interval_s: float):  # noqa: ANN201 - a lifespan hook factory
    """Lifespan hook: run the due steps every `interval_s` seconds (0 disables)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        if interval_s <= 0:
            yield
            return

        async def loop() -> None:
            last: dict[str, float] = {}
            while True:
                await asyncio.sleep(interval_s)
                now = time.monotonic()
                skip = frozenset(n for n, every in SLOW_STEPS.items() if now - last.get(n, -every) < every)
                last.update(dict.fromkeys(set(SLOW_STEPS) - skip, now))
                await run_due(app, skip=skip)

        with background_priority():  # its transactions queue behind requests for SQLite's writer (#19)
            task = asyncio.create_task(loop(), name="engagement-activities")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return hook
