"""Community goals ("46万 of 50万"): a target on a figure engagement already keeps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlmodel import Field, SQLModel

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime

GoalMetric = Literal["points", "checkins", "effective_activities", "members"]


class GoalCreate(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    metric: GoalMetric = "points"
    target: int = Field(gt=0)
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    ends_at: datetime | None = None


class CommunityGoal(EngagementModel, table=True):
    __tablename__ = "community_goal"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    community_id: str = Field(max_length=36, index=True)
    title: str = Field(max_length=200)
    metric: str = Field(max_length=30)
    target: int
    starts_at: datetime = Field(sa_type=AwareDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_at: datetime = Field(sa_type=AwareDateTime)
    reached_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class GoalPublic(SQLModel):
    id: str
    title: str
    metric: str
    target: int
    value: int
    percent: float
    remaining: int
    progress_text: str
    starts_at: datetime
    ends_at: datetime | None
    reached_at: datetime | None
