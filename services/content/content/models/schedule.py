"""Schedules, their exception dates and their occurrences (one row per due occurrence, fired once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from content.models.base import ContentModel, json_column, new_id
from qunzhu_common.db.types import AwareDateTime


class Schedule(ContentModel, table=True):
    """When to do something: once at `starts_at`, or by an RFC 5545 RRULE evaluated in `timezone`.

    `offset_s` shifts every due time from its rule occurrence (a T-1h reminder is the session's own
    occurrence with offset -3600). `next_occurs_at` is the next occurrence not yet materialised as an
    occurrence row; the scheduler advances it under a row lock.
    """

    __tablename__ = "schedule"
    __table_args__ = (Index("ix_schedule_status_next_due_at", "status", "next_due_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=100, index=True)
    kind: str = Field(max_length=30)
    title: str = Field(default="", max_length=200)
    rrule: str | None = Field(default=None, max_length=500)
    timezone: str = Field(max_length=64)
    starts_at: datetime = Field(sa_type=AwareDateTime)
    until_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    offset_s: int = 0
    misfire_grace_s: int = Field(ge=0)
    status: str = Field(default="active", max_length=20)  # active | paused | completed | cancelled
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    next_occurs_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    next_due_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    owner_ref: str | None = Field(default=None, max_length=100, index=True, description="e.g. session:<id>")
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)
    updated_at: datetime = Field(sa_type=AwareDateTime)


class ScheduleException(ContentModel, table=True):
    """An occurrence that must not fire (EXDATE), by its rule time."""

    __tablename__ = "schedule_exception"

    schedule_id: str = Field(primary_key=True, max_length=36, foreign_key="schedule.id")
    occurs_at: datetime = Field(primary_key=True, sa_type=AwareDateTime)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class ScheduleOccurrence(ContentModel, table=True):
    """One due occurrence. The unique (schedule, occurs_at) pair makes materialising it idempotent;
    the status change and the occurrence's effect commit together, so it fires at most once."""

    __tablename__ = "schedule_occurrence"
    __table_args__ = (
        UniqueConstraint("schedule_id", "occurs_at"),
        Index("ix_schedule_occurrence_status_due_at", "status", "due_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    schedule_id: str = Field(max_length=36, foreign_key="schedule.id")
    community_id: str = Field(max_length=100)
    kind: str = Field(max_length=30)
    occurs_at: datetime = Field(sa_type=AwareDateTime)
    due_at: datetime = Field(sa_type=AwareDateTime)
    status: str = Field(default="pending", max_length=20)  # pending | fired | skipped | failed
    fired_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    lateness_s: float | None = None
    skip_reason: str | None = Field(default=None, max_length=20)
    detail: str = Field(default="", max_length=500)
    fired_by: str | None = Field(default=None, max_length=100, description="Which scheduler replica fired it.")
    created_at: datetime = Field(sa_type=AwareDateTime)
