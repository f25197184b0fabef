"""create_app(settings): the engagement service as a FastAPI app."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from engagement.activities.timers import timer as activities_timer
from engagement.api import ROUTERS
from engagement.context import EngagementContext
from engagement.handlers import CONTEXT_HANDLERS, build_handlers
from engagement.jobs.runner import scheduler
from engagement.metrics import EngagementMetrics
from engagement.models import inbox_table, metadata, outbox_table
from engagement.settings import EngagementSettings
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _unbound(_session, _event):  # type: ignore[no-untyped-def]  # pragma: no cover - replaced in create_app
    raise RuntimeError("engagement handlers are bound to a running app by create_app")


SPEC = ServiceSpec(
    name="engagement",
    title="Qunzhu engagement",
    description="Scoring rules, points ledger, levels, leaderboards, key people and group health.",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=ROUTERS,
    # The consumed types; create_app binds each to the running app's context (outbox, metrics).
    handlers=dict.fromkeys(CONTEXT_HANDLERS, _unbound),
)


def create_app(settings: EngagementSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    settings = settings or EngagementSettings()
    holder: dict[str, EngagementContext] = {}
    spec = replace(SPEC, handlers=build_handlers(lambda: holder["ctx"]),
                   lifespan_hooks=[scheduler(settings.jobs_interval_s),
                                   activities_timer(settings.activities_interval_s)])
    app = build_app(spec, settings, bus=bus)
    runtime = app.state.runtime
    metrics = EngagementMetrics(runtime.metrics.registry)
    metrics.initialise()
    ctx = EngagementContext(outbox=runtime.outbox, metrics=metrics)
    holder["ctx"] = ctx
    app.state.engagement = ctx
    return app
