"""Check-in challenges (打卡挑战): title, rules, length, daily window, deadline; completions."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Literal

from pydantic import model_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.identity import GroupId


class ChallengeBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    rules: str = Field(default="", max_length=2000, description="What a valid check-in is, in words.")
    length_days: int = Field(default=21, ge=1, le=366, description="Check-in days needed to complete it.")
    starts_on: date = Field(description="First local day (community time zone).")
    window_start: time | None = Field(default=None, description="Daily window, local time (e.g. 05:00).")
    window_end: time | None = Field(default=None, description="End of the daily window, exclusive (e.g. 09:00).")
    deadline: datetime | None = Field(
        default=None, sa_type=AwareDateTime, description="Last moment a check-in counts; default start + length + 7 d."
    )
    group_id: str | None = Field(default=None, max_length=200, description="Only check-ins in this chat group.")


class ChallengeCreate(ChallengeBase):
    # A chat check-in always carries a contract group id: any other value could never match one (422, not a
    # challenge nobody can check in to). Stored rows and responses keep the loose base type.
    group_id: GroupId | Literal[""] | None = Field(
        default=None, description="Only check-ins in this chat group ('' or null: any group)."
    )

    @model_validator(mode="after")
    def _window(self) -> ChallengeCreate:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("window_start and window_end go together")
        if self.window_start is not None and self.window_end is not None and self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class CheckinChallenge(ChallengeBase, EngagementModel, table=True):
    __tablename__ = "checkin_challenge"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    community_id: str = Field(max_length=36, index=True)
    deadline: datetime = Field(sa_type=AwareDateTime)
    created_at: datetime = Field(sa_type=AwareDateTime)


class ChallengeCompletion(EngagementModel, table=True):
    """Who completed a challenge (once each; the event was announced then)."""

    __tablename__ = "challenge_completion"
    __table_args__ = (UniqueConstraint("challenge_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    challenge_id: str = Field(max_length=36)
    person_id: str = Field(max_length=200)
    completed_at: datetime = Field(sa_type=AwareDateTime)


class ChallengePublic(ChallengeBase):
    id: str
    community_id: str
    deadline: datetime
    created_at: datetime


class ChallengeProgress(SQLModel):
    person_id: str
    days_checked_in: int
    current_streak: int
    longest_streak: int
    completed: bool
    days_needed: int
    last_checkin_day: date | None
    rank: int | None = None
