"""Events produced by the engagement service on engagement.events.v1 (owned by the engagement service).

Every event is keyed by community id, so one community's points, levels and recommendations stay in order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import GroupId, PersonId
from qunzhu_common.events.registry import EventSpec
from qunzhu_common.events.topics import ENGAGEMENT_EVENTS


class _EngagementEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community_id: str = Field(max_length=100)


class PointsAwarded(_EngagementEvent):
    """A ledger entry: which rule gave (or took back) how many points for which source event."""

    person_id: str = Field(max_length=200)
    points: int = Field(description="Negative for a reversal (a recompute under a newer rule set).")
    rule: str = Field(max_length=100, description="The rule that produced the entry, e.g. `checkin@v2`.")
    rule_type: str = Field(max_length=50)
    rule_set_version: int = Field(ge=0)
    source_event_id: str = Field(max_length=100)
    group_id: GroupId | None = None
    reason: str = Field(default="", max_length=500)
    total_points: int = Field(description="The member's all-time total after this entry.")
    occurred_at: AwareDatetime


class LevelReached(_EngagementEvent):
    person_id: str = Field(max_length=200)
    level: int = Field(ge=1)
    previous_level: int = Field(ge=1)
    total_points: int
    threshold: int = Field(ge=0, description="Points the level starts at.")
    reached_at: AwareDatetime


class LurkerFlagged(_EngagementEvent):
    """No effective activity for `silent_days` (≥ the community's threshold); a nudge was sent."""

    person_id: str = Field(max_length=200)
    last_effective_at: AwareDatetime | None = None
    silent_days: int = Field(ge=0)
    threshold_days: int = Field(ge=1)
    flagged_at: AwareDatetime


RemovalReason = Literal["elimination", "rule_violation"]


class RemovalRecommended(_EngagementEvent):
    """Engagement recommends removing a member; membership (the owner) decides and acts.

    `evidence` holds the figures behind the recommendation, e.g. for an elimination
    `{"points_in_window": 3, "window_days": 60, "rank_from_bottom": 2, "bottom_n": 10}`, for a rule
    violation `{"strikes": 3, "strike_limit": 3, "last_strike": "bare_link"}`.
    """

    member_id: PersonId
    reason: RemovalReason
    detail: str = Field(default="", max_length=500)
    evidence: dict[str, int | float | str] = Field(default_factory=dict)
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    recommended_at: AwareDatetime


class RankedPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str = Field(max_length=200)
    score: float
    reason: str = Field(default="", max_length=300)


class KeyPeopleUpdated(_EngagementEvent):
    """Opinion leaders (PageRank over replies/mentions/reactions) and connectors (betweenness)."""

    window_start: AwareDatetime
    window_end: AwareDatetime
    opinion_leaders: list[RankedPerson] = Field(default_factory=list)
    connectors: list[RankedPerson] = Field(default_factory=list)
    clusters: int = Field(ge=0)
    nodes: int = Field(ge=0)
    edges: int = Field(ge=0)
    computed_at: AwareDatetime


class ScholarshipAwarded(_EngagementEvent):
    """One of the top 3 graded submissions of a homework assignment (奖学金)."""

    assignment_id: str = Field(max_length=100)
    assignment_title: str = Field(max_length=200)
    person_id: str = Field(max_length=200)
    rank: int = Field(ge=1, le=3)
    grade: int = Field(ge=1, le=5)
    awarded_at: AwareDatetime


class CheckinChallengeCompleted(_EngagementEvent):
    challenge_id: str = Field(max_length=100)
    challenge_title: str = Field(max_length=200)
    person_id: str = Field(max_length=200)
    days_checked_in: int = Field(ge=1)
    longest_streak: int = Field(ge=1)
    completed_at: AwareDatetime


class GoalReached(_EngagementEvent):
    goal_id: str = Field(max_length=100)
    title: str = Field(max_length=200)
    target: int
    value: int
    reached_at: AwareDatetime


class DeadGroupFlagged(_EngagementEvent):
    """A chat group's 7-day active ratio fell below a share of its first 30 days' (僵尸群 risk)."""

    group_id: GroupId
    active_ratio_7d: float
    baseline_active_ratio: float
    threshold_share: float
    flagged_at: AwareDatetime


def _spec(type_: str, payload: type[BaseModel], description: str) -> EventSpec:
    return EventSpec(type=type_, version=1, topic=ENGAGEMENT_EVENTS, payload=payload, description=description)


ENGAGEMENT_SPECS: tuple[EventSpec, ...] = (
    _spec("points.awarded", PointsAwarded, "A points ledger entry was written (award or reversal)."),
    _spec("level.reached", LevelReached, "A member reached a new level for the first time."),
    _spec("lurker.flagged", LurkerFlagged, "A member had no effective activity for N days."),
    _spec("removal.recommended", RemovalRecommended, "Engagement recommends removing a member, with evidence."),
    _spec("key_people.updated", KeyPeopleUpdated, "Opinion leaders and connectors of a community were recomputed."),
    _spec("scholarship.awarded", ScholarshipAwarded, "A top-3 homework submission earned a scholarship."),
    _spec("checkin_challenge.completed", CheckinChallengeCompleted, "A member completed a check-in challenge."),
    _spec("goal.reached", GoalReached, "A community goal reached its target."),
    _spec("group.dead_flagged", DeadGroupFlagged, "A chat group is at risk of becoming a dead group."),
)
