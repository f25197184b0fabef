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


# Group activities (活动): lotteries, polls, surveys, sign-up chains, campaigns, meetups, celebrations.

ActivityKind = Literal["lottery", "poll", "survey", "chain", "campaign", "meetup", "celebration"]
ParticipationAction = Literal[
    "entered", "voted", "vote_changed", "responded", "signed_up", "waitlisted", "promoted", "cancelled",
    "attended",
]


class ActivityParticipated(_EngagementEvent):
    """A member took part in a group activity (one event per member, activity and action)."""

    activity: ActivityKind
    activity_id: str = Field(max_length=100)
    person_id: str = Field(max_length=200)
    action: ParticipationAction
    group_id: GroupId | None = None
    position: int | None = Field(default=None, ge=1, description="Sign-ups: the line number, waitlist included.")
    occurred_at: AwareDatetime


class LotteryOpened(_EngagementEvent):
    """The commitment sha256(seed) is public before any entry, so the draw can be checked afterwards."""

    lottery_id: str = Field(max_length=100)
    title: str = Field(max_length=200)
    group_id: GroupId | None = None
    keyword: str = Field(max_length=50)
    winners_count: int = Field(ge=1)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    seed_commitment: str = Field(min_length=64, max_length=64)


class LotteryDrawn(_EngagementEvent):
    """Winners and the revealed seed: sha256(seed) equals the commitment, winners recompute from it."""

    lottery_id: str = Field(max_length=100)
    seed: str = Field(max_length=64)
    seed_commitment: str = Field(min_length=64, max_length=64)
    algorithm: str = Field(max_length=300)
    entrants_count: int = Field(ge=0)
    entrants_sha256: str = Field(max_length=64, description="sha256 of the sorted entrant ids joined by newlines.")
    winners: list[str] = Field(default_factory=list)
    drawn_at: AwareDatetime


class PollClosed(_EngagementEvent):
    poll_id: str = Field(max_length=100)
    question: str = Field(max_length=500)
    options: list[str]
    counts: list[int] = Field(description="Votes per option, in the options' order.")
    voters: int = Field(ge=0)
    closed_at: AwareDatetime


class CampaignRewardRecorded(_EngagementEvent):
    """A campaign triggered: a reward to pay out (Qunzhu never moves money itself)."""

    campaign_id: str = Field(max_length=100)
    title: str = Field(max_length=200)
    trigger: str = Field(max_length=20)
    reward_id: str = Field(max_length=100)
    recipient_id: str = Field(max_length=200)
    recipient_kind: Literal["person", "group"]
    amount_fen: int = Field(ge=0)
    reward_text: str = Field(default="", max_length=200)
    recorded_at: AwareDatetime


class CelebrationPosted(_EngagementEvent):
    person_id: str = Field(max_length=200)
    kind: Literal["level", "challenge", "scholarship", "anniversary"]
    ref: str = Field(max_length=100)
    group_id: GroupId
    posted_at: AwareDatetime


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
    _spec("activity.participated", ActivityParticipated, "A member entered, voted, signed up, attended…"),
    _spec("lottery.opened", LotteryOpened, "A lottery opened with its seed commitment."),
    _spec("lottery.drawn", LotteryDrawn, "A lottery was drawn: winners and the revealed seed."),
    _spec("poll.closed", PollClosed, "A poll closed with its final counts."),
    _spec("campaign.reward_recorded", CampaignRewardRecorded, "A campaign triggered a reward to pay out."),
    _spec("celebration.posted", CelebrationPosted, "A member was congratulated in their group."),
)
