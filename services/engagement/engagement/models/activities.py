"""Group activities (活动): lotteries, polls, surveys, sign-up chains, campaigns, meetups, celebrations.

One row per member and activity is guarded by a composite primary key or a unique constraint, so a
duplicate entry, vote or sign-up is an insert that does nothing (idempotent), also under concurrency.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime


def _id() -> str:
    return str(uuid.uuid4())


class Lottery(EngagementModel, table=True):
    """抽奖: entries in [opens_at, closes_at); winners drawn once from a seed committed at creation."""

    __tablename__ = "lottery"
    __table_args__ = (Index("ix_lottery_open", "community_id", "status"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=36)
    group_id: str = Field(default="", max_length=200, description="Where it is announced and entered ('' any).")
    title: str = Field(max_length=200)
    prize: str = Field(default="", max_length=500)
    keyword: str = Field(max_length=50)
    winners_count: int
    opens_at: datetime = Field(sa_type=AwareDateTime)
    closes_at: datetime = Field(sa_type=AwareDateTime)
    min_level: int = 1
    require_active: bool = True
    require_checkin_today: bool = False
    seed_commitment: str = Field(max_length=64, description="sha256 hex of the seed, published at creation.")
    seed: str = Field(max_length=64, description="Secret until the draw, then published.")
    status: str = Field(default="open", max_length=10, description="open | drawn")
    entry_count: int = 0
    drawn_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    winners: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class LotteryEntry(EngagementModel, table=True):
    __tablename__ = "lottery_entry"

    lottery_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    source: str = Field(max_length=10, description="chat | api")
    entered_at: datetime = Field(sa_type=AwareDateTime)


class Poll(EngagementModel, table=True):
    """投票: single or multiple choice, anonymous or named, until `closes_at`."""

    __tablename__ = "poll"
    __table_args__ = (Index("ix_poll_group", "community_id", "group_id"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=36)
    group_id: str = Field(default="", max_length=200)
    question: str = Field(max_length=500)
    options: list[str] = Field(sa_column=Column(JSON, nullable=False))
    multiple: bool = False
    max_choices: int = 1
    anonymous: bool = False
    changeable: bool = False
    closes_at: datetime = Field(sa_type=AwareDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=AwareDateTime, description="Results announced.")
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class PollVote(EngagementModel, table=True):
    __tablename__ = "poll_vote"

    poll_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    choices: list[int] = Field(sa_column=Column(JSON, nullable=False), description="1-based option numbers.")
    voted_at: datetime = Field(sa_type=AwareDateTime)
    changed_at: datetime = Field(sa_type=AwareDateTime)


class Survey(EngagementModel, table=True):
    """问卷: a small question set (choice, scale, text); one response per member, replaceable."""

    __tablename__ = "survey"

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=36, index=True)
    group_id: str = Field(default="", max_length=200)
    title: str = Field(max_length=200)
    questions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    closes_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class SurveyResponse(EngagementModel, table=True):
    __tablename__ = "survey_response"

    survey_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    answers: list[Any] = Field(sa_column=Column(JSON, nullable=False), description="One answer per question.")
    submitted_at: datetime = Field(sa_type=AwareDateTime)
    updated_at: datetime = Field(sa_type=AwareDateTime)


class SignupChain(EngagementModel, table=True):
    """接龙: numbered sign-ups, the first `capacity` confirmed, the rest waitlisted in order."""

    __tablename__ = "signup_chain"
    __table_args__ = (Index("ix_signup_chain_group", "community_id", "group_id", "status"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=36)
    group_id: str = Field(default="", max_length=200)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    capacity: int | None = Field(default=None, description="None: no limit, nobody waits.")
    closes_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    meetup_id: str | None = Field(default=None, max_length=36)
    status: str = Field(default="open", max_length=10, description="open | closed")
    next_seq: int = Field(default=0, description="Sign-up order, handed out under the chain's row lock.")
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class ChainSignup(EngagementModel, table=True):
    __tablename__ = "chain_signup"
    __table_args__ = (UniqueConstraint("chain_id", "seq"),)

    chain_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    seq: int
    line: str = Field(default="", max_length=500, description="What the member wrote on their line.")
    source: str = Field(max_length=10)
    signed_up_at: datetime = Field(sa_type=AwareDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class Campaign(EngagementModel, table=True):
    """Red-packet and goal campaigns: a trigger and the reward records it produces (never a payment)."""

    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_trigger", "community_id", "trigger"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=36)
    group_id: str = Field(default="", max_length=200)
    title: str = Field(max_length=200)
    trigger: str = Field(max_length=20, description="group_size | checkin_streak | first_answer")
    threshold: int = Field(default=0, description="Group size or streak days that trigger it.")
    answer: str = Field(default="", max_length=200, description="first_answer: the expected answer.")
    reward_fen: int = Field(default=0, description="Reward per recipient, integer fen.")
    reward_text: str = Field(default="", max_length=200)
    max_rewards: int = 1
    rewards_count: int = 0
    starts_at: datetime = Field(sa_type=AwareDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    triggered_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class CampaignReward(EngagementModel, table=True):
    """A reward for the operator to pay out; Qunzhu records it and who marked it paid, nothing more."""

    __tablename__ = "campaign_reward"
    __table_args__ = (UniqueConstraint("campaign_id", "recipient_id"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    campaign_id: str = Field(max_length=36)
    community_id: str = Field(max_length=36, index=True)
    recipient_id: str = Field(max_length=200, description="A person, or the group for a group-size campaign.")
    recipient_kind: str = Field(max_length=10, description="person | group")
    amount_fen: int
    reason: str = Field(default="", max_length=300)
    status: str = Field(default="pending", max_length=10, description="pending | paid")
    created_at: datetime = Field(sa_type=AwareDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    paid_by: str | None = Field(default=None, max_length=200)
    payout_ref: str = Field(default="", max_length=200)


class Meetup(EngagementModel, table=True):
    """线下活动: registration through its own 接龙 (capacity + waitlist), reminders, on-site check-in."""

    __tablename__ = "meetup"

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=36, index=True)
    group_id: str = Field(default="", max_length=200)
    title: str = Field(max_length=200)
    venue: str = Field(max_length=300)
    starts_at: datetime = Field(sa_type=AwareDateTime)
    ends_at: datetime = Field(sa_type=AwareDateTime)
    capacity: int
    chain_id: str = Field(max_length=36)
    remind_before_s: int = 86400
    reminded_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)


class MeetupAttendance(EngagementModel, table=True):
    """A confirmed registrant's one-time check-in code; `used_at` is their attendance."""

    __tablename__ = "meetup_attendance"
    __table_args__ = (UniqueConstraint("meetup_id", "code"),)

    meetup_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    code: str = Field(max_length=16)
    issued_at: datetime = Field(sa_type=AwareDateTime)
    used_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class CelebrationSettings(EngagementModel, table=True):
    __tablename__ = "celebration_settings"

    community_id: str = Field(primary_key=True, max_length=36)
    enabled: bool = True
    kinds: list[str] = Field(sa_column=Column(JSON, nullable=False))
    templates: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    member_interval_s: int = 86400
    group_hourly_limit: int = 10
    changed_at: datetime = Field(sa_type=AwareDateTime)


class Celebration(EngagementModel, table=True):
    """One per (community, kind, ref): posted, or skipped with the reason (rate limit, removed member…)."""

    __tablename__ = "celebration"
    __table_args__ = (
        UniqueConstraint("community_id", "kind", "ref"),
        Index("ix_celebration_member", "community_id", "person_id", "created_at"),
        Index("ix_celebration_group", "community_id", "group_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=36)
    person_id: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    ref: str = Field(max_length=100)
    group_id: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=1000)
    status: str = Field(max_length=10, description="posted | skipped")
    skip_reason: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)
