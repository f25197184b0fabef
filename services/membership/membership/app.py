"""create_app(settings): the membership service as a FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from qunzhu_common.bus.base import Bus
from qunzhu_common.service import ServiceSpec, build_app

from membership.api import router
from membership.models import inbox_table, metadata, outbox_table
from membership.settings import MembershipSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SPEC = ServiceSpec(
    name="membership",
    title="Qunzhu membership",
    description="Communities, plans, members, roles, payments and invitations (the paywall).",
    metadata=metadata,
    outbox_table=outbox_table,
    inbox_table=inbox_table,
    migrations_dir=MIGRATIONS_DIR,
    routers=[router],
    handlers={},
)


def create_app(settings: MembershipSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    return build_app(SPEC, settings or MembershipSettings(), bus=bus)
