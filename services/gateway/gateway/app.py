"""create_app(settings): the gateway as a FastAPI app."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from gateway.actions.api import router as actions_ops_router
from gateway.actions.handlers import HANDLERS as ACTION_HANDLERS
from gateway.actions.worker import actions_lifespan
from gateway.api import api, ops
from gateway.auth.api import router as auth_router
from gateway.connectors.api import router as connectors_router
from gateway.console import router as console_router
from gateway.limits import BodyLimits
from gateway.method_override import MethodOverride
from gateway.metrics import GatewayMetrics
from gateway.models import inbox_table, metadata, outbox_table
from gateway.openapi import install_aggregated_openapi
from gateway.orders.api import ops as orders_ops_router
from gateway.orders.api import router as orders_router
from gateway.orders.runtime import orders_lifespan
from gateway.paths import CanonicalPaths
from gateway.payments.api import router as payments_router
from gateway.projection import HANDLERS as PROJECTION_HANDLERS
from gateway.refunds.handlers import HANDLERS as REFUND_HANDLERS
from gateway.refunds.worker import refunds_lifespan
from gateway.settings import GatewaySettings
from gateway.state import gateway_lifespan
from gateway.upstream import upstreams_lifespan
from gateway.webhooks.api import ops as quarantine_router
from gateway.webhooks.api import router as webhooks_router
from gateway.webhooks.asgi import PREFIX as CHAT_PREFIX
from gateway.webhooks.asgi import ChatWebhookRoute
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="gateway",
    title="Qunzhu",
    description="Public API of Qunzhu: paid communities, content, engagement. Errors are RFC 9457 problems.",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    # Webhooks first: routes are matched in order and they carry the most traffic.
    routers=[
        webhooks_router, payments_router, api, orders_router, auth_router, connectors_router, quarantine_router,
        actions_ops_router, orders_ops_router, ops, console_router,
    ],
    handlers={**PROJECTION_HANDLERS, **ACTION_HANDLERS, **REFUND_HANDLERS},
    trusts_gateway_actor=False,
)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    bus: Bus | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """`transports` (embedded mode) reach the services in-process instead of over HTTP."""
    settings = settings or GatewaySettings()
    spec = replace(SPEC, lifespan_hooks=[
        upstreams_lifespan(settings, transports), gateway_lifespan(settings), actions_lifespan(settings),
        refunds_lifespan(settings), orders_lifespan(settings),
    ])
    app = build_app(spec, settings, bus=bus)
    app.state.gateway_metrics = GatewayMetrics(app.state.runtime.metrics.registry,
                                               app.state.runtime.metrics.before_collect)
    install_aggregated_openapi(app)
    app.add_middleware(BodyLimits, max_bytes=settings.api_max_body_bytes,
                       webhook_max_bytes=settings.webhook_max_body_bytes, read_timeout_s=settings.body_read_timeout_s)
    app.add_middleware(MethodOverride)  # POST + X-HTTP-Method-Override: PATCH, for wx.request
    app.add_middleware(CanonicalPaths)  # outermost of the two: a path is refused before its body is read
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-On-Behalf-Of", "X-Request-ID",
                           "Idempotency-Key", "X-HTTP-Method-Override"],
            expose_headers=["X-Request-ID", "Retry-After", "Location"], max_age=600,
        )
    # The chat webhook ahead of everything (issue #19): FastAPI's own entry (its per-request telemetry checks)
    # and stack (error, telemetry, body limit), the above, routing and dependencies; it does their part itself.
    app.__class__ = GatewayApp
    app.chat_route = ChatWebhookRoute(functools.partial(FastAPI.__call__, app), metrics=app.state.runtime.metrics,
                                      service_name=SPEC.name)
    return app


class GatewayApp(FastAPI):
    """The gateway's FastAPI application, whose chat webhook is answered before FastAPI sees the request
    (gateway.webhooks.asgi); every other request, and any the route hands on, goes through FastAPI."""

    chat_route: ChatWebhookRoute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CHAT_PREFIX):
            scope["app"] = self
            await self.chat_route(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)
