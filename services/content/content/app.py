"""create_app(settings): the content service as a FastAPI app, with its scheduler and fan-out."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from content.broadcasts.api import router as broadcasts_router
from content.broadcasts.dispatcher import Dispatcher
from content.clock import Clock, SystemClock
from content.community.api import router as community_router
from content.context import ContentContext
from content.handlers import build_handlers
from content.metrics import ContentMetrics
from content.models import inbox_table, metadata, outbox_table
from content.posts.api import router as posts_router
from content.scheduling.actions import ACTIONS
from content.scheduling.api import router as schedules_router
from content.scheduling.rituals import router as rituals_router
from content.scheduling.scheduler import Scheduler
from content.sessions.api import router as sessions_router
from content.settings import ContentSettings
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="content",
    title="Qunzhu content",
    description="Posts, schedules, guest sharing sessions and broadcasts to many groups.",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=[community_router, posts_router, schedules_router, rituals_router, sessions_router, broadcasts_router],
    handlers={},  # built per app in create_app: the handlers need the app's context
)


def _workers(ctx: ContentContext):  # noqa: ANN202 - a lifespan hook factory
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = app.state.runtime
        scheduler = Scheduler(session_maker=runtime.session_maker, ctx=ctx, actions=ACTIONS)
        dispatcher = Dispatcher(session_maker=runtime.session_maker, ctx=ctx)
        app.state.scheduler, app.state.dispatcher = scheduler, dispatcher
        ctx.wake_scheduler, ctx.wake_dispatcher = scheduler.wake, dispatcher.wake
        if runtime.relay is not None:
            ctx.wake_relay = runtime.relay.wake
        # One scheduler task per process; replicas (distributed mode) coordinate through row locks.
        if ctx.settings.run_scheduler:
            scheduler.start()
            dispatcher.start()
        try:
            yield
        finally:
            await scheduler.stop()
            await dispatcher.stop()

    return lifespan


def create_app(
    settings: ContentSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    """`clock` replaces the system clock (tests move time instead of waiting for it)."""
    settings = settings or ContentSettings()
    ctx = ContentContext(
        settings=settings,
        clock=clock or SystemClock(),
        metrics=None,  # type: ignore[arg-type]
        replica=f"{socket.gethostname()}:{os.getpid()}",
    )
    spec = replace(SPEC, handlers=build_handlers(ctx), lifespan_hooks=[_workers(ctx)])
    app = build_app(spec, settings, bus=bus)
    runtime = app.state.runtime
    ctx.metrics = ContentMetrics(runtime.metrics.registry)
    ctx.outbox = runtime.outbox
    app.state.content = ctx
    return app
