"""Rules, the activity history, the append-only points ledger and the running totals derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime

_BIGINT_PK = BigInteger().with_variant(Integer(), "sqlite")  # rowid alias on SQLite


class RuleSetVersion(EngagementModel, table=True):
    """One version of a community's scoring rules, in force from `effective_from` to the next version's."""

    __tablename__ = "rule_set_version"
    __table_args__ = (UniqueConstraint("community_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=36)
    version: int
    effective_from: datetime = Field(sa_type=AwareDateTime)
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(sa_type=AwareDateTime)


class Activity(EngagementModel, table=True):
    """Every scorable thing a member did, kept whole: the history replay rebuilds the ledger from.

    An activity of a person engagement does not know yet stays `pending` and is scored once the
    member is known (never dropped).
    """

    __tablename__ = "activity"
    __table_args__ = (
        UniqueConstraint("source_event_id", "kind"),
        Index("ix_activity_pending", "community_id", "person_id", "status"),
        Index("ix_activity_scored", "community_id", "scored_seq"),
        Index("ix_activity_repeat", "community_id", "person_id", "day", "text_hash"),
        Index("ix_activity_message", "community_id", "message_id"),
        Index("ix_activity_time", "community_id", "occurred_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True))
    community_id: str = Field(max_length=36)
    source_event_id: str = Field(max_length=100)
    source_type: str = Field(max_length=100)
    kind: str = Field(max_length=30, description="message, checkin, homework, question, reaction…")
    person_id: str = Field(max_length=200)
    group_id: str = Field(default="", max_length=200, description="'' when not in a chat group.")
    other_id: str | None = Field(
        default=None, max_length=200, description="The other party: replied-to sender, reactor, grader."
    )
    occurred_at: datetime = Field(sa_type=AwareDateTime)
    message_id: str | None = Field(default=None, max_length=200)
    reply_to_message_id: str | None = Field(default=None, max_length=200)
    text: str = Field(default="", max_length=20000)
    text_hash: str = Field(default="", max_length=16)
    links: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    mentions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    media_kind: str = Field(default="none", max_length=20)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=10, description="pending | scored")
    scored_seq: int | None = None
    rule_set_version: int | None = Field(
        default=None, description="The rule version it was scored under (replay uses the same one)."
    )
    day: date | None = Field(default=None, description="Local day in the community's zone, once scored.")
    rule_type: str | None = Field(default=None, max_length=30, description="The classifier's verdict.")
    reason: str = Field(default="", max_length=300)
    strike: str | None = Field(default=None, max_length=20, description="A 群规 strike: bare_link, ad, repeat.")
    points: int = Field(default=0, description="Points this activity brought, after caps and cooldown.")
    revision: int = Field(default=0, description="How many times a recompute re-scored it.")
    received_at: datetime = Field(sa_type=AwareDateTime)


@dataclass(slots=True, eq=False)
class NewActivity:
    """An activity on its way in, in the plain form the scorer works on: the chat handlers make one per
    message, and building the ORM model instead costs more than scoring it. Same fields as `Activity`
    (tests/test_engagement_scoring_batch.py keeps them equal); written with one multi-row INSERT."""

    community_id: str
    source_event_id: str
    source_type: str
    kind: str
    person_id: str
    occurred_at: datetime
    received_at: datetime
    group_id: str = ""
    other_id: str | None = None
    message_id: str | None = None
    reply_to_message_id: str | None = None
    text: str = ""
    text_hash: str = ""
    links: list[str] = dataclass_field(default_factory=list)
    mentions: list[str] = dataclass_field(default_factory=list)
    media_kind: str = "none"
    extra: dict[str, Any] = dataclass_field(default_factory=dict)
    status: str = "pending"
    scored_seq: int | None = None
    rule_set_version: int | None = None
    day: date | None = None
    rule_type: str | None = None
    reason: str = ""
    strike: str | None = None
    points: int = 0
    revision: int = 0
    id: int | None = None


class PointsLedger(EngagementModel, table=True):
    """Append-only: one row per (source event, rule, kind, revision). Totals are derived from it."""

    __tablename__ = "points_ledger"
    __table_args__ = (
        UniqueConstraint("source_event_id", "rule", "kind", "revision"),
        Index("ix_points_ledger_member_day", "community_id", "person_id", "day", "rule_type"),
    )

    id: int | None = Field(default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True))
    community_id: str = Field(max_length=36)
    person_id: str = Field(max_length=200)
    group_id: str = Field(default="", max_length=200)
    source_event_id: str = Field(max_length=100)
    activity_id: int | None = Field(default=None, sa_type=BigInteger)
    rule_type: str = Field(max_length=30)
    rule_set_version: int
    rule: str = Field(max_length=50, description="rule_type@v<version>: which rule produced the entry.")
    kind: str = Field(default="award", max_length=10, description="award | reversal")
    revision: int = Field(default=0, description="The activity's revision the entry belongs to (recomputes).")
    points: int
    occurred_at: datetime = Field(sa_type=AwareDateTime)
    day: date
    reason: str = Field(default="", max_length=300)
    created_at: datetime = Field(sa_type=AwareDateTime)


class MemberScore(EngagementModel, table=True):
    """Running all-time total and level per member, updated in the ledger entry's transaction."""

    __tablename__ = "member_score"
    __table_args__ = (Index("ix_member_score_rank", "community_id", "total_points"),)

    community_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    total_points: int = 0
    level: int = 1
    highest_level: int = 1
    last_effective_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class PointsDaily(EngagementModel, table=True):
    """Points per member, local day and chat group ('' outside groups): the windowed leaderboards' source."""

    __tablename__ = "points_daily"
    __table_args__ = (
        Index("ix_points_daily_member", "community_id", "person_id", "day"),
        Index("ix_points_daily_group", "community_id", "group_id", "day"),
    )

    community_id: str = Field(primary_key=True, max_length=36)
    day: date = Field(primary_key=True)
    group_id: str = Field(primary_key=True, max_length=200)
    person_id: str = Field(primary_key=True, max_length=200)
    points: int = 0
