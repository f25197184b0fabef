"""Request and response bodies of engagement's HTTP API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from engagement.scoring.rules import ScoringRules
from qunzhu_common.timeutil import utcnow

# A rule version takes effect within this window: history is re-scored from at most 2000-01-01 (nothing
# older exists), and a version is planned at most a year ahead (year 9999 would be a version never in force).
EARLIEST_EFFECTIVE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
MAX_EFFECTIVE_AHEAD = timedelta(days=366)


class RuleSetCreate(BaseModel):
    rules: ScoringRules = Field(default_factory=ScoringRules)
    effective_from: AwareDatetime | None = Field(
        default=None, description="Default: now. From 2000-01-01 to at most a year (366 days) ahead."
    )
    note: str = Field(default="", max_length=500)
    recompute: bool = Field(default=False, description="Re-score history from effective_from under this version.")

    @field_validator("effective_from")
    @classmethod
    def _within_window(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value < EARLIEST_EFFECTIVE_FROM:
            raise ValueError(f"effective_from must not be before {EARLIEST_EFFECTIVE_FROM.date().isoformat()}")
        if value > utcnow() + MAX_EFFECTIVE_AHEAD:
            raise ValueError(f"effective_from must be at most {MAX_EFFECTIVE_AHEAD.days} days ahead")
        return value


class RuleSetPublic(BaseModel):
    version: int
    effective_from: datetime | None
    rules: dict[str, Any]
    note: str = ""


class RuleSetsPublic(BaseModel):
    current: RuleSetPublic
    versions: list[RuleSetPublic]
    recomputed_activities: int | None = None


class LedgerEntryPublic(BaseModel):
    source_event_id: str
    rule: str
    rule_type: str
    rule_set_version: int
    kind: str
    points: int
    reason: str
    group_id: str
    day: date
    occurred_at: datetime


class ActivityPublic(BaseModel):
    source_event_id: str
    kind: str
    status: str
    rule_type: str | None
    points: int
    reason: str
    strike: str | None
    group_id: str
    occurred_at: datetime
    text: str


class PointsPublic(BaseModel):
    """A member's points and why they have them."""

    person_id: str
    total_points: int
    level: int
    by_rule_type: dict[str, int]
    entries: list[LedgerEntryPublic]
    count: int


class LeaderboardEntryPublic(BaseModel):
    rank: int
    person_id: str
    display_name: str
    points: int


class LeaderboardPublic(BaseModel):
    community_id: str
    window: str
    group_id: str | None
    since: date | None
    data: list[LeaderboardEntryPublic]


class StandingPublic(BaseModel):
    person_id: str
    window: str
    group_id: str | None
    rank: int
    points: int
    members_ranked: int
    total_points: int
    level: int
    next_level: int | None
    next_level_at: int | None
    points_to_next_level: int | None
    top10_points: int | None
    points_to_top10: int


class ReplayPublic(BaseModel):
    community_id: str
    activities: int
    equal: bool
    ledger_identical: bool
    applied: bool
    differences: list[str]
