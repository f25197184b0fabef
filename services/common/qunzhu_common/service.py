"""What every service shares at runtime: engine, bus, outbox relay, consumers, metrics, health.

A service describes itself with a `ServiceSpec`; `build_app` turns it into a FastAPI app whose
lifespan owns every resource (nothing is created at import time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from qunzhu_common.actor import enforce_scope
from qunzhu_common.bus.base import Bus, Subscription
from qunzhu_common.bus.delivery import RetryPolicy
from qunzhu_common.db.engine import create_engine, create_read_engine, create_session_maker, is_sqlite
from qunzhu_common.db.migrate import upgrade_head_async
from qunzhu_common.db.writegate import WriteGate, background_priority
from qunzhu_common.docs import install_offline_docs
from qunzhu_common.errors import install_problem_handlers, problem_response
from qunzhu_common.events.asyncapi import asyncapi_document
from qunzhu_common.events.registry import EventRegistry, default_registry
from qunzhu_common.events.topics import ALL_TOPICS
from qunzhu_common.inbox import EventConsumer, Handler
from qunzhu_common.jsonbody import JsonBodyGuard
from qunzhu_common.logging import configure_logging
from qunzhu_common.metrics import HttpMetricsMiddleware, ServiceMetrics, metrics_endpoint
from qunzhu_common.outbox import OutboxRelay, OutboxWriter
from qunzhu_common.requestctx import RequestContextMiddleware
from qunzhu_common.settings import ServiceSettings
from qunzhu_common.transaction_retry import TransactionRetryMiddleware

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    name: str
    title: str
    description: str
    metadata: MetaData
    outbox_table: Table
    inbox_table: Table
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    version: str = "0.1.0"
    # Extra resources a service owns beyond the common ones (e.g. the gateway's HTTP clients);
    # entered after the runtime started, left before it stops.
    lifespan_hooks: Sequence[Callable[[FastAPI], AbstractAsyncContextManager[None]]] = ()
    # Services behind the gateway take their caller from its signed actor assertion; the gateway
    # authenticates callers itself.
    trusts_gateway_actor: bool = True
    # Paths whose JSON bodies JsonBodyGuard leaves alone: a signed webhook is verified first, and a payload
    # that breaks the JSON rules is quarantined (and acknowledged), never refused.
    raw_body_prefixes: Sequence[str] = ("/webhooks/",)


def build_bus(settings: ServiceSettings) -> Bus:
    policy = RetryPolicy(max_attempts=settings.max_delivery_attempts)
    if settings.bus == "kafka":
        from qunzhu_common.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap_servers,
            topics=ALL_TOPICS,
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            policy=policy,
            client_id=f"qunzhu-{settings.service_name}",
        )
    from qunzhu_common.bus.local import LocalBus

    return LocalBus(settings.bus_path, partitions=settings.topic_partitions, policy=policy)


class ServiceRuntime:
    """The resources of one running service; lives on `app.state.runtime`."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: ServiceSettings,
        *,
        bus: Bus | None = None,
        registry: EventRegistry | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.registry = registry or default_registry()
        self.metrics = ServiceMetrics(spec.name)
        self.outbox = OutboxWriter(table=spec.outbox_table, registry=self.registry, source=spec.name)
        self._injected_bus = bus
        self.bus: Bus | None = bus
        self.engine: AsyncEngine | None = None
        self._session_maker: async_sessionmaker[AsyncSession] | None = None
        self.read_engine: AsyncEngine | None = None
        self._read_session_maker: async_sessionmaker[AsyncSession] | None = None
        self.write_gate: WriteGate | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: EventConsumer | None = None
        self._subscription: Subscription | None = None
        self.started = False

    @property
    def session_maker(self) -> async_sessionmaker[AsyncSession]:
        if self._session_maker is None:
            raise RuntimeError(f"{self.spec.name} is not started")
        return self._session_maker

    @property
    def read_session_maker(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for reads only: on SQLite a read-only pool that never waits for the writer (a WAL
        snapshot); on PostgreSQL the same engine as `session_maker`."""
        if self._read_session_maker is None:
            raise RuntimeError(f"{self.spec.name} is not started")
        return self._read_session_maker

    async def start(self) -> None:
        configure_logging(self.settings.log_level, self.settings.log_format)
        if self.settings.auto_migrate:
            await upgrade_head_async(self.spec.migrations_dir, self.settings.database_url)
        self.write_gate = WriteGate(
            request_wait_s=self.settings.sqlite_write_wait_s,
            background_wait_s=self.settings.sqlite_background_write_wait_s,
            on_wait=self.metrics.db_write_waited, on_timeout=self.metrics.db_write_timed_out,
        )
        self.engine = create_engine(self.settings.database_url, gate=self.write_gate)
        self._session_maker = create_session_maker(self.engine)
        self.read_engine = create_read_engine(
            self.settings.database_url, self.engine, pool_size=self.settings.sqlite_read_pool_size)
        self._read_session_maker = create_session_maker(self.read_engine)
        if self.bus is None:
            self.bus = build_bus(self.settings)
            await self.bus.start()
        self.relay = OutboxRelay(
            session_maker=self.session_maker,
            table=self.spec.outbox_table,
            bus=self.bus,
            service=self.spec.name,
            batch_size=self.settings.outbox_batch_size,
            poll_interval_s=self.settings.outbox_poll_interval_s,
            on_published=self.metrics.published,
            on_backlog=self.metrics.backlog,
            on_failure=self.metrics.publish_failed,
            read_session_maker=self.read_session_maker,
        )
        self.outbox.on_write(self.relay.wake)
        if self.settings.run_relay:
            self.relay.start()
        if self.spec.handlers:
            self.consumer = EventConsumer(
                group_id=self.spec.name,
                session_maker=self.session_maker,
                inbox_table=self.spec.inbox_table,
                registry=self.registry,
                handlers=self.spec.handlers,
                metrics=self.metrics,
                batch_hold_s=self.settings.sqlite_consume_hold_s if is_sqlite(self.settings.database_url) else None,
            )
            self.metrics.initialise_consumer(
                [(spec.topic, spec.type) for spec in self.registry.specs() if spec.type in self.spec.handlers]
            )
            if self.settings.run_consumers:
                # The consumer's tasks start from here: their transactions are background work.
                with background_priority():
                    self._subscription = await self._subscribe()
        self.started = True
        log.info("%s started (bus=%s)", self.spec.name, self.settings.bus)

    async def _subscribe(self) -> Subscription:
        assert self.bus is not None and self.consumer is not None
        return await self.bus.subscribe(
            group_id=self.spec.name,
            topics=self.consumer.topics(),
            handler=self.consumer,
            observer=self.metrics,
            batch_handler=self.consumer.handle_batch,
            batch_size=self.settings.consume_batch_size,
        )

    async def stop(self) -> None:
        self.started = False
        if self._subscription is not None:
            await self._subscription.stop()
            self._subscription = None
        if self.relay is not None:
            await self.relay.stop()
        if self.bus is not None and self._injected_bus is None:
            await self.bus.stop()
            self.bus = None
        if self.read_engine is not None and self.read_engine is not self.engine:
            await self.read_engine.dispose()
        self.read_engine = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None

    async def check_ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with self.read_session_maker() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            if self.bus is None:
                raise RuntimeError("no bus")
            await self.bus.ping()
            checks["bus"] = "ok"
        except Exception as exc:
            checks["bus"] = f"error: {type(exc).__name__}"
        return checks


def _health_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """The process is up and serving requests."""
        return {"status": "ok", "service": runtime.spec.name}

    @router.get("/readyz", summary="Readiness", responses={503: {"description": "A dependency is down"}})
    async def readyz() -> JSONResponse:
        """The database and the bus are reachable."""
        if not runtime.started:
            return problem_response(status=503, title="Starting", slug="not-ready", headers={"Retry-After": "1"})
        checks = await runtime.check_ready()
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ok", "service": runtime.spec.name, "checks": checks})
        return problem_response(
            status=503, title="Not ready", slug="not-ready", checks=checks, headers={"Retry-After": "5"}
        )

    router.add_api_route(
        "/metrics", metrics_endpoint(runtime.metrics), methods=["GET"], include_in_schema=False
    )

    @router.get("/asyncapi.json", summary="AsyncAPI document of every event", tags=["events"])
    async def asyncapi() -> dict[str, Any]:
        """AsyncAPI 3.0: every topic, its key and the schema of every event on it (from the registry)."""
        return asyncapi_document(runtime.registry, version=runtime.spec.version)

    return router


def build_app(
    spec: ServiceSpec,
    settings: ServiceSettings,
    *,
    bus: Bus | None = None,
    registry: EventRegistry | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(spec, settings, bus=bus, registry=registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            async with AsyncExitStack() as stack:
                for hook in spec.lifespan_hooks:
                    await stack.enter_async_context(hook(app))
                yield
        finally:
            await runtime.stop()

    # /docs and /redoc are served with local assets (install_offline_docs), not FastAPI's CDN pages.
    app = FastAPI(
        title=spec.title, description=spec.description, version=spec.version, lifespan=lifespan,
        docs_url=None, redoc_url=None,
    )
    app.state.runtime = runtime
    install_offline_docs(app)
    install_problem_handlers(app)
    # Innermost: a request whose transaction lost a race (deadlock, serialization failure) runs again.
    app.add_middleware(TransactionRetryMiddleware)
    # Deep, oversized or unstorable JSON is a 4xx before FastAPI parses it (and before any transaction).
    app.add_middleware(JsonBodyGuard, max_bytes=settings.json_max_body_bytes, skip_prefixes=spec.raw_body_prefixes)
    app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(RequestContextMiddleware, service=spec.name)
    app.include_router(_health_router(runtime))
    for router in spec.routers:
        # Every route: a scoped actor (API key, community login) acts only in its own community.
        app.include_router(router, dependencies=[Depends(enforce_scope)] if spec.trusts_gateway_actor else [])
    return app


def runtime_of(request: Request) -> ServiceRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]
