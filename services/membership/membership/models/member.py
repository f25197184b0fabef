"""Memberships: one row per (community, person), whatever happened to it (the history is in the events)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel, new_id
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.events.contracts.membership import MemberStatus, Role
from qunzhu_common.timeutil import utcnow

# Statuses in which a person holds a membership that still counts (may pay, renew, be reminded…).
LIVE_STATUSES = ("pending_ritual", "active")


class Membership(MembershipModel, table=True):
    __table_args__ = (
        UniqueConstraint("community_id", "member_id"),
        Index("ix_membership_status_expires_at", "status", "expires_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(foreign_key="community.id", index=True, max_length=36)
    member_id: str = Field(max_length=200, index=True, description="Person id, e.g. wecom:zhangsan.")
    display_name: str = Field(default="", max_length=200)
    contact: str = Field(default="", max_length=200)
    role: str = Field(default="member", max_length=10)
    status: str = Field(max_length=20)
    status_reason: str = Field(default="", max_length=500)
    tier: str = Field(default="", max_length=50)
    plan_id: str | None = Field(default=None, max_length=36)
    comp: bool = Field(default=False, description="Staff or free member: never expires.")
    joined_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    trial_expires_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    trial_used: bool = Field(default=False)
    referrer_id: str | None = Field(default=None, max_length=200, index=True)
    invite_id: str | None = Field(default=None, max_length=36)
    accepted_rules_version: int = Field(default=0)
    application_text: str = Field(default="", max_length=2000)
    reviewed_by: str | None = Field(default=None, max_length=200)
    reviewed_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    ritual_intro_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    ritual_nickname_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    ritual_done_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    next_reminder_at: datetime | None = Field(
        default=None, sa_type=AwareDateTime, index=True, description="When the scheduler should look again."
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class JoinRequest(Body):
    """A person asks to join. What happens depends on the entry policy (see the route)."""

    accepted_rules_version: int = Field(default=0, ge=0, description="The rules version the person accepted.")
    invite_code: str | None = Field(default=None, min_length=4, max_length=64)
    referrer_id: PersonId | None = None
    plan_id: str | None = Field(default=None, max_length=36, description="The plan the person means to buy.")
    application_text: str = Field(default="", max_length=2000)
    display_name: str = Field(default="", max_length=200)
    contact: str = Field(default="", max_length=200)


class TrialRequest(Body):
    plan_id: str = Field(min_length=1, max_length=36)


class ReviewDecision(Body):
    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=500)


class RoleChange(Body):
    role: Literal["admin", "guest", "member"]


class RemovalRequest(Body):
    reason: str = Field(min_length=1, max_length=500)


class ProfileUpdate(Body):
    """What a member may change about themselves."""

    display_name: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=200)


class MemberPublic(SQLModel):
    """A membership as the gateway and the member see it (role, status, tier, term)."""

    community_id: str
    member_id: str
    display_name: str
    role: Role
    status: MemberStatus
    status_reason: str
    tier: str
    plan_id: str | None
    joined_at: datetime | None
    expires_at: datetime | None
    referrer_id: str | None
    in_good_standing: bool
    permissions: list[str] = Field(default_factory=list)


class DirectoryEntry(SQLModel):
    member_id: str
    display_name: str
    role: Role
    joined_at: datetime | None
    contact: str | None = Field(default=None, description="Only when contact details are visible to the reader.")


class DirectoryPage(SQLModel):
    data: list[DirectoryEntry]
    count: int


class ApplicationPublic(SQLModel):
    member_id: str
    display_name: str
    application_text: str
    referrer_id: str | None
    created_at: datetime


class ApplicationsPage(SQLModel):
    data: list[ApplicationPublic]
    count: int


class BlacklistEntry(MembershipModel, table=True):
    """A person the owner never wants back, in any of the owner's communities."""

    __tablename__ = "blacklist_entry"

    owner_id: str = Field(primary_key=True, max_length=100)
    person_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(max_length=36, description="Where it was decided.")
    reason: str = Field(max_length=500)
    decided_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class BlacklistRequest(Body):
    reason: str = Field(min_length=1, max_length=500)


class BlacklistPublic(SQLModel):
    owner_id: str
    person_id: str
    community_id: str
    reason: str
    decided_by: str
    created_at: datetime
