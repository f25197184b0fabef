"""Chat groups of a community and the seats members hold in them (capacity is a database constraint)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.identity import GroupId, Platform
from qunzhu_common.timeutil import utcnow

GroupRole = Literal["A", "B"]
DEFAULT_CAPACITY = 500  # WeChat's limit for a group


class ChatGroup(MembershipModel, table=True):
    """A chat group on a platform; `id` is `<platform>:<external id>` as the gateway names groups."""

    __tablename__ = "chat_group"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        # Seats are counted here and can never exceed the capacity, whatever runs concurrently.
        CheckConstraint("member_count >= 0 AND member_count <= capacity", name="seats_within_capacity"),
    )

    id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(foreign_key="community.id", index=True, max_length=36)
    platform: str = Field(max_length=20)
    external_id: str = Field(max_length=180)
    name: str = Field(default="", max_length=200)
    capacity: int = Field(default=DEFAULT_CAPACITY, ge=1)
    role: str = Field(default="A", max_length=1)
    paid: bool = Field(default=True)
    active: bool = Field(default=True)
    position: int = Field(default=0)
    member_count: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class GroupCreate(Body):
    platform: Platform
    external_id: str = Field(min_length=1, max_length=180, schema_extra={"pattern": r"^\S+$"})
    name: str = Field(default="", max_length=200)
    capacity: int = Field(default=DEFAULT_CAPACITY, ge=1, le=100000)
    role: GroupRole = "A"
    paid: bool | None = Field(default=None, description="Default: whether the community's entry is paid.")
    position: int = Field(default=0, ge=0, le=100000, description="Fill order among open groups.")


class GroupUpdate(Body):
    name: str | None = Field(default=None, max_length=200)
    capacity: int | None = Field(default=None, ge=1, le=100000)
    role: GroupRole | None = None
    paid: bool | None = None
    active: bool | None = None
    position: int | None = Field(default=None, ge=0, le=100000)


class GroupPublic(SQLModel):
    id: str
    community_id: str
    platform: str
    external_id: str
    name: str
    capacity: int
    role: GroupRole
    paid: bool
    active: bool
    position: int
    member_count: int
    created_at: datetime


class Seat(MembershipModel, table=True):
    """A member assigned to a chat group; each seat counts once against the group's capacity."""

    group_id: str = Field(foreign_key="chat_group.id", primary_key=True, max_length=200)
    member_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(index=True, max_length=36)
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class SeatAssign(Body):
    group_id: GroupId = Field(description="`<platform>:<chat id>`, as in member.groups_changed.")
