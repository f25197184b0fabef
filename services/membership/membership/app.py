"""create_app(settings): the membership service as a FastAPI app."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from membership.api import ROUTERS
from membership.clock import Clock, system_clock
from membership.context import MembershipContext
from membership.expected import membership_registry
from membership.handlers import build_handlers
from membership.jobs import scheduler_lifespan
from membership.metrics import MembershipMetrics
from membership.models import inbox_table, metadata, outbox_table
from membership.settings import MembershipSettings
from qunzhu_common.bus.base import Bus
from qunzhu_common.errors import problem_response
from qunzhu_common.service import ServiceSpec, build_app

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="membership",
    title="Qunzhu membership",
    description=(
        "Communities, chat groups, plans, join flows, payments and the ledger, roles and the permission matrix, "
        "the paywall, expiry and reminders, invitations and fission. Routes that act for a person read "
        "`X-Actor-Id` (set by the gateway after authentication). Errors are RFC 9457 problems."
    ),
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=ROUTERS,
)


def create_app(
    settings: MembershipSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    """`clock` (tests) replaces the system clock for every time decision the service makes."""
    settings = settings or MembershipSettings()
    ctx = MembershipContext(settings=settings, clock=clock or system_clock)
    spec = replace(SPEC, handlers=build_handlers(ctx), lifespan_hooks=[scheduler_lifespan(ctx)])
    app = build_app(spec, settings, bus=bus, registry=membership_registry())
    runtime = app.state.runtime
    ctx.outbox = runtime.outbox
    ctx.metrics = MembershipMetrics(runtime.metrics.registry)
    app.state.membership = ctx

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique key or a CHECK stopped a concurrent duplicate (double join, seat, refund request…).
        return problem_response(status=409, title="Conflict with a concurrent change", slug="concurrent-update",
                                detail="another request changed the same thing at the same time; retry",
                                instance=request.url.path)

    return app
