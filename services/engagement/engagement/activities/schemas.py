"""Request and response bodies of the activities API (times aware, money integer fen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from qunzhu_common.events.contracts.identity import GroupId, PersonId

# A request names people and groups with the types of the events it causes (activity.participated,
# lottery.opened, chat.action.requested…), so what those would refuse is a 422 here, never a 500 at emit time.
# '' = no particular group: any group takes part and nothing is announced.
GroupOrAny = GroupId | Literal[""]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonBody(_Body):
    person_id: PersonId = Field(description="`<platform>:<user id>`, no whitespace or control characters.")


# Lottery


class LotteryCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    prize: str = Field(default="", max_length=500)
    group_id: GroupOrAny = Field(default="", description="Announced and entered there ('' any group).")
    keyword: str = Field(default="抽奖", min_length=1, max_length=50, description="The chat message that enters.")
    winners_count: int = Field(default=1, ge=1, le=1000)
    opens_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    closes_at: AwareDatetime
    min_level: int = Field(default=1, ge=1, le=100)
    require_active: bool = True
    require_checkin_today: bool = False
    created_by: str = Field(default="", max_length=200)


class LotteryPublic(BaseModel):
    id: str
    title: str
    prize: str
    group_id: str
    keyword: str
    winners_count: int
    opens_at: datetime
    closes_at: datetime
    min_level: int
    require_active: bool
    require_checkin_today: bool
    status: str
    entry_count: int
    seed_commitment: str
    seed: str | None = Field(description="Revealed after the draw (null before).")
    algorithm: str
    winners: list[str]
    drawn_at: datetime | None
    created_at: datetime


class EntryPublic(BaseModel):
    lottery_id: str
    person_id: str
    source: str
    entered_at: datetime
    new: bool


class EntrantsPublic(BaseModel):
    lottery_id: str
    entrants: list[str] = Field(description="Sorted by code point: the list the draw uses.")
    entrants_sha256: str


# Polls


class PollCreate(_Body):
    question: str = Field(min_length=1, max_length=500)
    options: list[str] = Field(min_length=2, max_length=20)
    group_id: GroupOrAny = ""
    multiple: bool = False
    max_choices: int | None = Field(default=None, ge=1, le=20, description="Multiple choice: at most this many.")
    anonymous: bool = False
    changeable: bool = Field(default=False, description="Members may change their vote until the deadline.")
    closes_at: AwareDatetime
    created_by: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _options(self) -> PollCreate:
        cleaned = [o.strip() for o in self.options]
        if any(not o or len(o) > 200 for o in cleaned):
            raise ValueError("options must be 1–200 characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("options must be distinct")
        self.options = cleaned
        if not self.multiple:
            self.max_choices = 1
        elif self.max_choices is None or self.max_choices > len(cleaned):
            self.max_choices = len(cleaned)
        return self


class VoteBody(_Body):
    person_id: PersonId
    choices: list[int] = Field(min_length=1, max_length=20, description="1-based option numbers.")


class VotePublic(BaseModel):
    poll_id: str
    person_id: str
    choices: list[int]
    voted_at: datetime
    changed_at: datetime
    outcome: Literal["new", "unchanged", "changed"]


class OptionCount(BaseModel):
    number: int
    option: str
    votes: int
    voters: list[str] | None = Field(default=None, description="Named polls only.")


class PollPublic(BaseModel):
    id: str
    question: str
    options: list[str]
    group_id: str
    multiple: bool
    max_choices: int
    anonymous: bool
    changeable: bool
    closes_at: datetime
    closed_at: datetime | None
    created_at: datetime


class PollResults(BaseModel):
    poll_id: str
    question: str
    open: bool
    voters: int
    counts: list[OptionCount]


# Surveys

QuestionKind = Literal["choice", "multi_choice", "scale", "text"]


class Question(_Body):
    kind: QuestionKind
    text: str = Field(min_length=1, max_length=500)
    options: list[str] = Field(default_factory=list, max_length=20)
    scale_min: int = Field(default=1, ge=0, le=10)
    scale_max: int = Field(default=5, ge=1, le=10)
    required: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.kind in ("choice", "multi_choice") and len(self.options) < 2:
            raise ValueError(f"a {self.kind} question needs at least 2 options")
        if self.kind == "scale" and self.scale_min >= self.scale_max:
            raise ValueError("scale_min must be below scale_max")
        return self


class SurveyCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    group_id: GroupOrAny = ""
    questions: list[Question] = Field(min_length=1, max_length=30)
    closes_at: AwareDatetime | None = None
    created_by: str = Field(default="", max_length=200)


class SurveyPublic(BaseModel):
    id: str
    title: str
    group_id: str
    questions: list[dict[str, Any]]
    closes_at: datetime | None
    created_at: datetime
    responses: int = 0


class ResponseBody(_Body):
    person_id: PersonId
    answers: list[Any] = Field(description="One per question: an option number (choice), a list of them "
                                           "(multi_choice), an integer (scale), a string (text), or null.")


class ResponsePublic(BaseModel):
    survey_id: str
    person_id: str
    answers: list[Any]
    submitted_at: datetime
    updated_at: datetime


# Sign-up chains (接龙)


class ChainCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    group_id: GroupOrAny = ""
    capacity: int | None = Field(default=None, ge=1, le=10000, description="None: no limit, nobody waits.")
    closes_at: AwareDatetime | None = None
    created_by: str = Field(default="", max_length=200)


class SignupBody(_Body):
    person_id: PersonId
    line: str = Field(default="", max_length=500, description="What to show on the member's line.")


class ChainLine(BaseModel):
    position: int
    person_id: str
    line: str
    status: Literal["confirmed", "waitlisted"]
    signed_up_at: datetime


class ChainPublic(BaseModel):
    id: str
    title: str
    description: str
    group_id: str
    capacity: int | None
    closes_at: datetime | None
    meetup_id: str | None
    status: str
    created_at: datetime
    confirmed: list[ChainLine] = Field(default_factory=list)
    waitlist: list[ChainLine] = Field(default_factory=list)


class SignupPublic(BaseModel):
    chain_id: str
    person_id: str
    outcome: Literal["signed_up", "already", "rejoined", "cancelled", "already_cancelled"]
    position: int | None
    status: Literal["confirmed", "waitlisted", "cancelled"]
    promoted: list[str] = Field(default_factory=list, description="Cancelling moved these up from the waitlist.")


# Campaigns

Trigger = Literal["group_size", "checkin_streak", "first_answer"]


class CampaignCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    trigger: Trigger
    group_id: GroupOrAny = Field(default="", description="group_size: whose size ('' the community's).")
    threshold: int = Field(default=0, ge=0, le=100000, description="Group size, or check-in streak in days.")
    answer: str = Field(default="", max_length=200, description="first_answer: the answer that wins.")
    reward_fen: int = Field(ge=0, le=100_000_000, description="Per recipient, integer fen (¥500 = 50000).")
    reward_text: str = Field(default="", max_length=200)
    max_rewards: int = Field(default=1, ge=1, le=10000)
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime | None = None
    created_by: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _trigger(self) -> CampaignCreate:
        if self.trigger == "group_size" and self.threshold < 2:
            raise ValueError("a group_size campaign needs threshold ≥ 2 (the group size to reach)")
        if self.trigger == "group_size" and self.max_rewards != 1:
            raise ValueError("a group_size campaign rewards the group once (max_rewards 1)")
        if self.trigger == "checkin_streak" and self.threshold < 1:
            raise ValueError("a checkin_streak campaign needs threshold ≥ 1 (days in a row)")
        if self.trigger == "first_answer" and not self.answer.strip():
            raise ValueError("a first_answer campaign needs the answer")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignPublic(BaseModel):
    id: str
    title: str
    trigger: str
    group_id: str
    threshold: int
    reward_fen: int
    reward_text: str
    max_rewards: int
    rewards_count: int
    starts_at: datetime
    ends_at: datetime | None
    triggered_at: datetime | None
    created_at: datetime
    progress: int | None = Field(default=None, description="group_size: the size now.")


class RewardPublic(BaseModel):
    id: str
    campaign_id: str
    recipient_id: str
    recipient_kind: str
    amount_fen: int
    reason: str
    status: str
    created_at: datetime
    paid_at: datetime | None
    paid_by: str | None
    payout_ref: str


class PaidBody(_Body):
    paid_by: str = Field(min_length=1, max_length=200)
    payout_ref: str = Field(default="", max_length=200, description="e.g. the red packet's or transfer's id.")


# Meetups (线下活动)


class MeetupCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    venue: str = Field(min_length=1, max_length=300)
    group_id: GroupOrAny = ""
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1, le=10000)
    registration_closes_at: AwareDatetime | None = Field(default=None, description="Default: the start.")
    remind_before_s: int = Field(default=86400, ge=0, le=30 * 86400, description="0: no reminder.")
    created_by: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _times(self) -> MeetupCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.registration_closes_at and self.registration_closes_at > self.starts_at:
            raise ValueError("registration must close by the start")
        return self


class MeetupPublic(BaseModel):
    id: str
    title: str
    venue: str
    group_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    chain_id: str
    remind_before_s: int
    reminded_at: datetime | None
    created_at: datetime
    registration: ChainPublic | None = None


class CodePublic(BaseModel):
    meetup_id: str
    person_id: str
    code: str = Field(description="One-time: shown at the door, accepted once.")
    issued_at: datetime
    used_at: datetime | None


class CodeBody(_Body):
    code: str = Field(min_length=4, max_length=16)


class AttendeePublic(BaseModel):
    person_id: str
    line: str
    position: int
    attended_at: datetime | None


# Celebrations

CelebrationKind = Literal["level", "challenge", "scholarship", "anniversary"]


class CelebrationSettingsBody(_Body):
    enabled: bool = True
    kinds: list[CelebrationKind] = Field(default_factory=lambda: ["level", "challenge", "scholarship", "anniversary"])
    templates: dict[CelebrationKind, str] = Field(
        default_factory=dict, description="Overrides per kind; placeholders {name} {level} {title} {days} {rank} "
                                          "{years}.")
    member_interval_s: int = Field(default=86400, ge=0, le=30 * 86400,
                                   description="At most one congratulation per member in this many seconds.")
    group_hourly_limit: int = Field(default=10, ge=1, le=1000, description="At most this many per group and hour.")


class CelebrationSettingsPublic(CelebrationSettingsBody):
    community_id: str


class CelebrationPublic(BaseModel):
    person_id: str
    kind: str
    ref: str
    group_id: str
    text: str
    status: str
    skip_reason: str
    created_at: datetime
