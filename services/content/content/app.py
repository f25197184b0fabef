"""create_app(settings): the content service as a FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

from content.api import router
from content.handlers import HANDLERS
from content.models import inbox_table, metadata, outbox_table
from content.settings import ContentSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="content",
    title="Qunzhu content",
    description="Posts, schedules, guest sharing sessions and broadcasts to many groups.",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=[router],
    handlers=HANDLERS,
)


def create_app(settings: ContentSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    return build_app(SPEC, settings or ContentSettings(), bus=bus)
