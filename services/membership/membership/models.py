"""Membership's tables and their API schemas (SQLModel family per entity)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import field_validator
from qunzhu_common.db.messaging import add_messaging_tables
from qunzhu_common.db.metadata import new_registry
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.membership import EntryPolicy
from qunzhu_common.timeutil import utcnow
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

registry = new_registry()
metadata = registry.metadata
outbox_table, inbox_table = add_messaging_tables(metadata)


class MembershipModel(SQLModel, registry=registry):
    """Base of membership's tables: its own metadata, apart from the other services'."""


class CommunityBase(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    positioning: str = Field(
        min_length=1, max_length=280, description="The one-line positioning (定位) members see before joining."
    )
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class CommunityCreate(CommunityBase):
    owner_id: str = Field(min_length=1, max_length=100)
    entry_policies: list[EntryPolicy] = Field(default_factory=lambda: ["free"], min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("entry_policies")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("entry policies must not repeat")
        return value


class Community(CommunityBase, MembershipModel, table=True):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    owner_id: str = Field(max_length=100, index=True)
    entry_policies: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class CommunityPublic(CommunityBase):
    id: str
    owner_id: str
    entry_policies: list[EntryPolicy]
    created_at: datetime


class CommunitiesPublic(SQLModel):
    data: list[CommunityPublic]
    count: int
