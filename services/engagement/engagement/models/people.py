"""What the scheduled jobs conclude: lurker flags, removal recommendations, key people, group health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime


class LurkerFlag(EngagementModel, table=True):
    """A member flagged for no effective activity; flagged again only after being active in between."""

    __tablename__ = "lurker_flag"
    __table_args__ = (Index("ix_lurker_flag_member", "community_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=36)
    person_id: str = Field(max_length=200)
    last_effective_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    silent_days: int
    flagged_at: datetime = Field(sa_type=AwareDateTime)


class RemovalRecommendation(EngagementModel, table=True):
    """One recommendation per member, reason and period (`period`: the elimination window, or strikes)."""

    __tablename__ = "removal_recommendation"
    __table_args__ = (UniqueConstraint("community_id", "person_id", "reason", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=36)
    person_id: str = Field(max_length=200)
    reason: str = Field(max_length=30)
    period: str = Field(max_length=50)
    detail: str = Field(default="", max_length=500)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    recommended_at: datetime = Field(sa_type=AwareDateTime)


class KeyPeopleSnapshot(EngagementModel, table=True):
    __tablename__ = "key_people_snapshot"
    __table_args__ = (Index("ix_key_people_snapshot_latest", "community_id", "computed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=36)
    window_start: datetime = Field(sa_type=AwareDateTime)
    window_end: datetime = Field(sa_type=AwareDateTime)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(sa_type=AwareDateTime)


class DeadGroupFlag(EngagementModel, table=True):
    __tablename__ = "dead_group_flag"
    __table_args__ = (Index("ix_dead_group_flag_group", "community_id", "group_id"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=36)
    group_id: str = Field(max_length=200)
    active_ratio_7d: float
    baseline_active_ratio: float
    flagged_at: datetime = Field(sa_type=AwareDateTime)
