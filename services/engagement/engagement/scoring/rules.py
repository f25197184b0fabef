"""A community's scoring rules: one pydantic document, stored whole per version.

Every number here is a default the operator can change (domain.md); the defaults come from the issue
(check-in 5, homework 10 + grade bonus, answer 6, effective message 1, share with an introduction 3,
session attended 5, noise 0), MEE6 (60 s between scored messages) and Skool (levels L1–L9).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Every activity type the classifier can produce. Types missing from `points` score 0.
RuleType = Literal[
    "checkin",
    "homework_submitted",
    "homework_grade_bonus",
    "question_asked",
    "question_answered",
    "effective_message",
    "share_with_intro",
    "bare_link",
    "noise",
    "signup_chain",
    "reaction_received",
    "red_packet",
    "session_attended",
    "post_published",
    "lottery_entry",
    "poll_vote",
    "survey_answered",
    "meetup_attended",
]
RULE_TYPES: tuple[str, ...] = RuleType.__args__  # type: ignore[attr-defined]

DEFAULT_POINTS: dict[str, int] = {
    "checkin": 5,
    "homework_submitted": 10,
    "homework_grade_bonus": 0,  # the bonus itself comes from `grade_bonus` by grade
    "question_asked": 0,
    "question_answered": 6,
    "effective_message": 1,
    "share_with_intro": 3,
    "bare_link": 0,
    "noise": 0,
    "signup_chain": 0,
    "reaction_received": 0,
    "red_packet": 0,
    "session_attended": 5,
    "post_published": 0,
    # Group activities (engagement/activities): luck earns nothing; taking part a little; showing up in
    # person a lot ("a hundred chats online are worth less than one meeting").
    "lottery_entry": 0,
    "poll_vote": 1,
    "survey_answered": 3,
    "meetup_attended": 10,
}
DEFAULT_DAILY_CAPS: dict[str, int] = {
    "checkin": 5, "effective_message": 20, "share_with_intro": 9, "question_answered": 30,
    "poll_vote": 3, "survey_answered": 9, "signup_chain": 5,
}
DEFAULT_GRADE_BONUS: dict[str, int] = {"1": 0, "2": 1, "3": 2, "4": 4, "5": 6}
SKOOL_LEVELS: list[int] = [0, 5, 20, 65, 155, 515, 2015, 8015, 33015]

# Noise (降噪): greetings, "reply 1", acknowledgements, laughter. Matched against the whole message
# after trimming, so "早安，今天的作业我有个问题…" is not noise.
DEFAULT_NOISE_PATTERNS: list[str] = [
    r"^(早安|早上好|早|午安|晚安|晚上好|大家好|good ?morning|good ?night|hi|hello)[!！~。.\s]*$",
    r"^[1１+]+$",
    r"^(收到|好的|好|嗯+|哦+|ok|OK|谢谢|感谢|多谢|赞|顶|\+1)[!！~。.\s]*$",
    r"^(哈+|呵+|嘿+|h+a+|lol)[!！~。.\s]*$",
]
DEFAULT_AD_PATTERNS: list[str] = [r"加微信|加v|代理招募|兼职刷单|日赚|免费领取"]


# Bounds a sane community stays far inside: points are summed into 64-bit totals over years of activity
# (10⁴ points per activity, 10⁶ per member and type and day), and a number beyond them is a typo or an attack.
MAX_POINTS = 10_000
MAX_DAILY_CAP = 1_000_000
MAX_LEVEL_THRESHOLD = 1_000_000_000
_BOUNDS = {"points": MAX_POINTS, "daily_caps": MAX_DAILY_CAP, "grade_bonus": MAX_POINTS}


class ScoringRules(BaseModel):
    """What counts, how much, how often. Validated whole: an inconsistent set is a 422 naming the field."""

    model_config = ConfigDict(extra="forbid")

    points: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_POINTS),
        description=f"Points per activity type, 0–{MAX_POINTS:_}; types left out keep their defaults.",
    )
    daily_caps: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_DAILY_CAPS),
        description=f"Most points one member can get from one activity type per local day, 0–{MAX_DAILY_CAP:_}.",
    )
    grade_bonus: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_GRADE_BONUS),
        description=f"Extra homework points by grade 1–5, 0–{MAX_POINTS:_} each.",
    )
    cooldown_s: int = Field(
        default=60, ge=0, le=86400,
        description="At most one scored message per member in each slot of this many seconds (0: no cooldown).",
    )
    min_length: int = Field(default=5, ge=0, le=1000, description="Shorter messages are not effective.")
    intro_min_length: int = Field(
        default=10, ge=0, le=1000, description="Text besides the link that makes a share an introduced one."
    )
    keywords: list[str] = Field(
        default_factory=list,
        description="On-positioning keywords; when any is set, a message must contain one to be effective.",
    )
    noise_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_NOISE_PATTERNS))
    ad_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_AD_PATTERNS))
    level_thresholds: list[int] = Field(
        default_factory=lambda: list(SKOOL_LEVELS), max_length=100,
        description=f"Points at which L1, L2, … start: from 0, increasing, at most {MAX_LEVEL_THRESHOLD:_}; "
        "at most 100 levels.",
    )
    lurker_days: int = Field(default=14, ge=1, le=365)
    elimination_window_days: int = Field(default=60, ge=1, le=730)
    elimination_bottom_n: int = Field(default=10, ge=0, le=10000)
    strike_limit: int = Field(default=3, ge=1, le=100)
    key_people_window_days: int = Field(default=30, ge=1, le=365)
    key_people_top_k: int = Field(default=10, ge=1, le=100)
    dead_group_share: float = Field(
        default=0.3, gt=0, le=1, description="Dead-group risk below this share of the first 30 days' active ratio."
    )

    @field_validator("points", "daily_caps", "grade_bonus")
    @classmethod
    def _within_bounds(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        highest = _BOUNDS[info.field_name or ""]
        for key, number in value.items():
            if number < 0:
                raise ValueError(f"{key} must not be negative (got {number})")
            if number > highest:
                raise ValueError(f"{key} must be at most {highest:_} (got {number})")
        return value

    @field_validator("points", "daily_caps")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(RULE_TYPES))
        if unknown:
            raise ValueError(f"unknown activity types {unknown}; known: {list(RULE_TYPES)}")
        return value

    @field_validator("grade_bonus")
    @classmethod
    def _grades(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - {"1", "2", "3", "4", "5"})
        if unknown:
            raise ValueError(f"grades are 1–5, got {unknown}")
        return value

    @field_validator("noise_patterns", "ad_patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
        return value

    @field_validator("level_thresholds")
    @classmethod
    def _ordered_levels(cls, value: list[int]) -> list[int]:
        if not value or value[0] != 0:
            raise ValueError("the first level must start at 0 points")
        if value[-1] > MAX_LEVEL_THRESHOLD:
            raise ValueError(f"level thresholds must be at most {MAX_LEVEL_THRESHOLD:_} (got {value[-1]})")
        for lower, upper in zip(value, value[1:], strict=False):
            if upper <= lower:
                raise ValueError(f"level thresholds must strictly increase ({lower} then {upper})")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> ScoringRules:
        # A partial `points` map keeps the defaults for the types it does not mention.
        self.points = {**DEFAULT_POINTS, **self.points}
        return self

    def points_for(self, rule_type: str) -> int:
        return self.points.get(rule_type, 0)

    def cap_for(self, rule_type: str) -> int | None:
        return self.daily_caps.get(rule_type)

    def level_for(self, total: int) -> int:
        """L1 from 0 points; the level is the number of thresholds reached."""
        return sum(1 for threshold in self.level_thresholds if total >= threshold) or 1

    def next_threshold(self, total: int) -> int | None:
        for threshold in self.level_thresholds:
            if threshold > total:
                return threshold
        return None


DEFAULT_RULES = ScoringRules()
