"""Invite codes (single or multi use, expiry, inviter) and fission campaigns (裂变)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, model_validator
from sqlalchemy import JSON, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel, new_id
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.identity import GroupId
from qunzhu_common.timeutil import utcnow


class Invite(MembershipModel, table=True):
    __table_args__ = (CheckConstraint("uses >= 0 AND uses <= max_uses", name="uses_within_max"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    code: str = Field(unique=True, max_length=64)
    community_id: str = Field(foreign_key="community.id", index=True, max_length=36)
    inviter_id: str = Field(max_length=200, index=True)
    max_uses: int = Field(default=1, ge=1)
    uses: int = Field(default=0, ge=0)
    expires_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class InviteRedemption(MembershipModel, table=True):
    __tablename__ = "invite_redemption"

    invite_id: str = Field(foreign_key="invite.id", primary_key=True, max_length=36)
    invitee_id: str = Field(primary_key=True, max_length=200)
    redeemed_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class InviteCreate(Body):
    max_uses: int = Field(default=1, ge=1, le=10000, description="1 = single use.")
    expires_at: AwareDatetime | None = None


class InvitePublic(SQLModel):
    id: str
    code: str
    community_id: str
    inviter_id: str
    max_uses: int
    uses: int
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class InvitesPage(SQLModel):
    data: list[InvitePublic]
    count: int


class ReferralLink(SQLModel):
    member_id: str
    referrer_id: str | None
    depth: int


class LeaderboardRow(SQLModel):
    rank: int
    member_id: str
    invites: int
    commission_fen: int


class Leaderboard(SQLModel):
    community_id: str
    period: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    data: list[LeaderboardRow]


CampaignKind = Literal["member_goal", "invite_contest"]


class Campaign(MembershipModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(foreign_key="community.id", index=True, max_length=36)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=200)
    reward: str = Field(max_length=500)
    goal: int | None = Field(default=None, ge=1)
    group_id: str | None = Field(default=None, max_length=200)
    places: int = Field(default=1, ge=1)
    starts_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    state: str = Field(default="open", max_length=20, index=True)
    reached_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    winners: list[dict] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class CampaignCreate(Body):
    kind: CampaignKind
    title: str = Field(min_length=1, max_length=200)
    reward: str = Field(min_length=1, max_length=500, description="e.g. 群主发 ¥500 红包, 第一名 ¥10,000")
    goal: int | None = Field(default=None, ge=1, le=1_000_000, description="member_goal: members to reach.")
    group_id: GroupId | None = Field(default=None, description="member_goal of one group (as in campaign.changed).")
    places: int = Field(default=1, ge=1, le=100, description="invite_contest: how many places win.")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _shape(self) -> CampaignCreate:
        if self.kind == "member_goal" and self.goal is None:
            raise ValueError("a member_goal campaign needs a goal")
        if self.kind == "invite_contest" and (self.starts_at is None or self.ends_at is None):
            raise ValueError("an invite_contest needs starts_at and ends_at")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignProgress(SQLModel):
    id: str
    community_id: str
    kind: CampaignKind
    title: str
    reward: str
    goal: int | None
    group_id: str | None
    places: int
    starts_at: datetime | None
    ends_at: datetime | None
    state: str
    progress: int
    percent: float | None
    reached_at: datetime | None
    leaders: list[LeaderboardRow] = Field(default_factory=list)
    winners: list[dict] = Field(default_factory=list)
