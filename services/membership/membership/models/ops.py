"""Bookkeeping of the scheduled and reactive work: reminders, unpaid-join flags, removal reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel, new_id
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.timeutil import utcnow


class MemberReminder(MembershipModel, table=True):
    """One reminder sent: at most one per membership, kind, term end and offset (replicas or reruns)."""

    __tablename__ = "member_reminder"
    __table_args__ = (UniqueConstraint("membership_id", "kind", "due_key"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    membership_id: str = Field(max_length=36, index=True)
    community_id: str = Field(max_length=36)
    kind: str = Field(max_length=10, description="renewal or ritual")
    due_key: str = Field(max_length=80, description="e.g. the expiry instant and the days before it")
    sent_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class UnpaidJoinFlag(MembershipModel, table=True):
    """Someone in a paid chat group without an active membership (reconciliation)."""

    __tablename__ = "unpaid_join_flag"
    __table_args__ = (Index("ix_unpaid_join_flag_state_due_at", "state", "due_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(index=True, max_length=36)
    group_id: str = Field(max_length=200)
    person_id: str = Field(max_length=200)
    joined_at: datetime = Field(sa_type=AwareDateTime)
    due_at: datetime = Field(sa_type=AwareDateTime, description="When the policy applies if still unpaid.")
    policy: str = Field(max_length=10)
    state: str = Field(default="pending", max_length=10, description="pending → open/removed/cleared/dismissed")
    resolved_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    decided_by: str | None = Field(default=None, max_length=200, description="Who decided it (null: automatic).")
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class UnpaidJoinPublic(SQLModel):
    id: str
    community_id: str
    group_id: str
    person_id: str
    joined_at: datetime
    due_at: datetime
    policy: str
    state: Literal["pending", "open", "cleared", "removed", "dismissed"]
    resolved_at: datetime | None
    decided_by: str | None = None


class RemovalReview(MembershipModel, table=True):
    __tablename__ = "removal_review"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(index=True, max_length=36)
    member_id: str = Field(max_length=200)
    reason: str = Field(max_length=500)
    source: str = Field(max_length=20)
    source_ref: str | None = Field(default=None, max_length=200, unique=True,
                                   description="The recommendation id (one review per recommendation).")
    state: str = Field(default="pending", max_length=10, index=True)
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class RemovalReviewPublic(SQLModel):
    id: str
    community_id: str
    member_id: str
    reason: str
    source: str
    state: Literal["pending", "approved", "dismissed"]
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class ReviewVerdict(Body):
    decision: Literal["approve", "dismiss"]
