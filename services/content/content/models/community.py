"""Content's copies of what membership owns: communities, who holds which role, and chat groups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from content.models.base import ContentModel
from qunzhu_common.db.types import AwareDateTime

GroupRole = Literal["A", "B"]


class CommunityCopyPublic(SQLModel):
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    positioning: str = Field(max_length=280)
    timezone: str = Field(max_length=64, description="Schedules are evaluated in this zone.")
    created_at: datetime = Field(sa_type=AwareDateTime)
    synced_at: datetime = Field(sa_type=AwareDateTime, description="When content learned of it.")


class CommunityCopy(CommunityCopyPublic, ContentModel, table=True):
    """Projection of membership's communities (from membership.events.v1)."""

    __tablename__ = "community_copy"


class CommunityMember(ContentModel, table=True):
    """Projection of membership's member.* events: who may author, answer, read which tier."""

    __tablename__ = "community_member"

    community_id: str = Field(primary_key=True, max_length=100)
    member_id: str = Field(primary_key=True, max_length=200)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    status: str = Field(max_length=30)
    tier: str = Field(default="", max_length=50)
    changed_at: datetime = Field(sa_type=AwareDateTime, description="Of the last applied event (older ones lose).")
    level: int | None = Field(default=None, description="From engagement's level.reached (for audiences).")


class ChatGroupBase(SQLModel):
    group_id: str = Field(
        primary_key=True,
        min_length=3,
        max_length=200,
        regex=r"^[a-z]+:.+$",
        description="Platform group id as in contracts/identity.py, e.g. `wecom:wrOg…`.",
    )
    role: str = Field(default="A", max_length=1, description="AB-group promotion: A = general, B = core.")
    title: str = Field(default="", max_length=100)


class ChatGroupRegister(ChatGroupBase):
    # Validated here (SQLModel does not enforce `regex` on the base): the prefix is the 20-char platform column.
    group_id: Annotated[str, StringConstraints(min_length=3, max_length=200, pattern=r"^[a-z]{1,20}:.+$")]
    role: GroupRole = "A"


class ChatGroup(ChatGroupBase, ContentModel, table=True):
    """A chat group of a community, as content knows it (registered by an owner/admin for now).

    Membership will announce groups with an event of its own; this table then becomes its projection.
    """

    __tablename__ = "community_group"

    community_id: str = Field(max_length=100, index=True)
    platform: str = Field(max_length=20)
    active: bool = True
    registered_by: str = Field(max_length=200)
    registered_at: datetime = Field(sa_type=AwareDateTime)


class ChatGroupPublic(ChatGroupBase):
    community_id: str
    platform: str
    active: bool
    registered_at: datetime


class GroupMember(ContentModel, table=True):
    """Who is in which chat group (from chat.events.v1), so a broadcast can target members by tier."""

    __tablename__ = "group_member"

    group_id: str = Field(primary_key=True, max_length=200)
    person_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(max_length=100, index=True)
    present: bool = True
    changed_at: datetime = Field(sa_type=AwareDateTime)
