"""Engagement's copies of what membership owns: communities and their members (role, status, since)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime


class CommunityCopyPublic(SQLModel):
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    positioning: str = Field(max_length=280)
    timezone: str = Field(max_length=64, description="Days and weeks of leaderboards are cut in this zone.")
    created_at: datetime = Field(sa_type=AwareDateTime)
    synced_at: datetime = Field(sa_type=AwareDateTime, description="When engagement learned of it.")


class CommunityCopy(CommunityCopyPublic, EngagementModel, table=True):
    """Projection of membership's communities (from membership.events.v1)."""

    __tablename__ = "community_copy"

    owner_id: str = Field(default="", max_length=200)
    # Order in which activities were scored: replay scores them again in exactly this order.
    scored_count: int = Field(default=0)


class MemberCopy(EngagementModel, table=True):
    """Who is a member of a community, with which role and since when (from member.* events)."""

    __tablename__ = "member_copy"

    community_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(primary_key=True, max_length=200)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    status: str = Field(max_length=20)
    joined_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    changed_at: datetime = Field(sa_type=AwareDateTime)


class GroupMember(EngagementModel, table=True):
    """Who is in which chat group right now (from chat.member.joined / left)."""

    __tablename__ = "group_member"

    community_id: str = Field(primary_key=True, max_length=36)
    group_id: str = Field(primary_key=True, max_length=200)
    person_id: str = Field(primary_key=True, max_length=200)
    joined_at: datetime = Field(sa_type=AwareDateTime)
    left_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class GroupCopy(EngagementModel, table=True):
    """A community's chat groups with their AB role (from membership's group.registered / group.updated)."""

    __tablename__ = "group_copy"

    community_id: str = Field(primary_key=True, max_length=36)
    group_id: str = Field(primary_key=True, max_length=200)
    platform: str = Field(max_length=20)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=1, description="A = open group, B = core group.")
    capacity: int
    paid: bool
    active: bool = True
    changed_at: datetime = Field(sa_type=AwareDateTime)
