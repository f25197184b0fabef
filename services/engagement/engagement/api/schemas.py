"""Request and response bodies of engagement's HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from engagement.scoring.rules import ScoringRules


class RuleSetCreate(BaseModel):
    rules: ScoringRules = Field(default_factory=ScoringRules)
    effective_from: AwareDatetime | None = Field(default=None, description="Default: now.")
    note: str = Field(default="", max_length=500)
    recompute: bool = Field(default=False, description="Re-score history from effective_from under this version.")


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
