"""create_app(settings): the gateway as a FastAPI app."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import httpx
from fastapi import FastAPI
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

from gateway.api import api, ops
from gateway.models import inbox_table, metadata, outbox_table
from gateway.settings import GatewaySettings
from gateway.upstream import upstreams_lifespan

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="gateway",
    title="Qunzhu",
    description="Public API of Qunzhu: paid communities, content, engagement. Errors are RFC 9457 problems.",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=[api, ops],
)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    bus: Bus | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """`transports` (embedded mode) reach the services in-process instead of over HTTP."""
    settings = settings or GatewaySettings()
    spec = replace(SPEC, lifespan_hooks=[upstreams_lifespan(settings, transports)])
    return build_app(spec, settings, bus=bus)
