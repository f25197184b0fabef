"""create_app(settings): the engagement service as a FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

from engagement.api import router
from engagement.handlers import HANDLERS
from engagement.models import inbox_table, metadata, outbox_table
from engagement.settings import EngagementSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="engagement",
    title="Qunzhu engagement",
    description="Scoring rules, points ledger, levels, leaderboards, key people and group health.",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=[router],
    handlers=HANDLERS,
)


def create_app(settings: EngagementSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    return build_app(SPEC, settings or EngagementSettings(), bus=bus)
