"""The gateway's own resources beyond the common runtime, built in its lifespan (app.state.gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from gateway.connectors.service import ConnectorCache
from gateway.crypto import SecretBox, jwt_key, load_keys
from gateway.errors import PayloadTooLarge
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import TokenBuckets
from gateway.settings import GatewaySettings
from gateway.webhooks.batch import BatchRecorder
from gateway.webhooks.batcher import GroupCommitter
from gateway.webhooks.fastpath import FastBatch
from qunzhu_common.service import ServiceRuntime


@dataclass
class GatewayState:
    settings: GatewaySettings
    runtime: ServiceRuntime
    box: SecretBox
    jwt_key: bytes
    metrics: GatewayMetrics
    connectors: ConnectorCache = field(default_factory=ConnectorCache)
    clients: TokenBuckets | None = None
    deliveries: TokenBuckets | None = None  # verified chat deliveries per connector
    ingest: GroupCommitter | None = None


def _debounced(wake: Callable[[], None], delay_s: float) -> Callable[[], None]:
    """Wake the relay once per `delay_s` however many webhooks commit meanwhile.

    The relay holds the database's write lock while it publishes a batch; woken after every commit
    it would contend with every next webhook. A few milliseconds later it publishes them together.
    """
    pending = False

    def fire() -> None:
        nonlocal pending
        pending = False
        wake()

    def schedule() -> None:
        nonlocal pending
        if not pending:
            pending = True
            asyncio.get_running_loop().call_later(delay_s, fire)

    return schedule


def gateway_lifespan(settings: GatewaySettings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: ServiceRuntime = app.state.runtime
        keys = load_keys(settings)
        app.state.gateway = GatewayState(
            settings=settings, runtime=runtime, box=SecretBox(keys), jwt_key=jwt_key(settings, keys),
            metrics=app.state.gateway_metrics,
            clients=TokenBuckets(rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst),
            deliveries=TokenBuckets(rate_per_s=settings.webhook_rate_per_s, burst=settings.webhook_burst),
        )
        wake = runtime.relay.wake if runtime.relay is not None else None
        if wake is not None and settings.outbox_wake_delay_s > 0:
            wake = _debounced(wake, settings.outbox_wake_delay_s)
            runtime.outbox.on_write(wake)
        recorder = BatchRecorder(registry=runtime.registry, outbox_table=runtime.spec.outbox_table,
                                 source_service=runtime.spec.name, on_outbox_write=wake)
        # SQLite: one write connection, so one writer; PostgreSQL: batches overlap (each row claim in key order).
        postgres = runtime.engine is not None and runtime.engine.dialect.name == "postgresql"
        ingest = app.state.gateway.ingest = GroupCommitter(
            runtime.session_maker, recorder, writers=settings.webhook_commit_writers if postgres else 1,
            engine=runtime.engine if postgres else None,
            fast=FastBatch(recorder, runtime.engine.dialect) if postgres else None)
        ingest.start()
        try:
            yield
        finally:
            await ingest.stop()

    return lifespan


async def state_of(request: Request) -> GatewayState:
    # async on purpose: FastAPI runs plain-function dependencies in a thread pool, a cost per request.
    return request.app.state.gateway  # type: ignore[no-any-return]


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
