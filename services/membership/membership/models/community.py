"""Communities: public face, entry policy, versioned rules, and the settings of the paywall and rituals."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, CheckConstraint, Column, String
from sqlmodel import Field, SQLModel

from membership.models.base import Body, MembershipModel, new_id
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.events.contracts.membership import CommunityTemplate, EntryPolicy
from qunzhu_common.timeutil import utcnow

DEFAULT_INTRO_FIELDS = ["我是谁", "我需要", "我能提供"]
DEFAULT_NICKNAME_PATTERN = "城市-行业-名字"


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


def _check_policies(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("entry policies must not repeat")
    if "free" in value and len(value) > 1:
        raise ValueError("'free' cannot be combined with another entry policy")
    return value


class CommunityBase(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    positioning: str = Field(
        min_length=1, max_length=280, description="The one-line positioning (定位) members see before joining."
    )
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class CommunityCreate(CommunityBase):
    """What a creator sends. The owner is the acting person (`X-Actor-Id`)."""

    model_config = {"extra": "forbid"}  # type: ignore[assignment]

    owner_id: PersonId | None = Field(
        default=None, min_length=1, max_length=100,
        description="Deprecated: the owner is the acting person. Only read when no X-Actor-Id is sent "
        "(until the gateway authenticates); must equal X-Actor-Id when both are sent.",
    )
    entry_policies: list[EntryPolicy] | None = Field(
        default=None, min_length=1, description="Default: the template's, else ['free']."
    )
    template: CommunityTemplate | None = Field(default=None, description="Preset policies, rules and ritual.")
    rules: str | None = Field(default=None, max_length=20000, description="First version of the rules (群规).")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("entry_policies")
    @classmethod
    def _policies(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_policies(value)


class CommunityUpdate(Body):
    """The public face; only the fields sent change."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    positioning: str | None = Field(default=None, min_length=1, max_length=280)
    timezone: str | None = Field(default=None, max_length=64)
    entry_policies: list[EntryPolicy] | None = Field(default=None, min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)

    @field_validator("entry_policies")
    @classmethod
    def _policies(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_policies(value)


UnpaidJoinPolicy = Literal["flag", "remove"]
RemovalPolicy = Literal["auto", "review"]
# Someone who joins one of the community's chat groups without a membership (#17): `admit` makes them an
# active member (the joining ritual starts), `flag` is the unpaid-join reconciliation of paid groups,
# `ignore` does nothing. Unset: `admit` in a free community, `flag` otherwise (effective_chat_join_policy).
ChatJoinPolicy = Literal["admit", "flag", "ignore"]
# A member who left every chat group of the community: `keep` the membership, `pause` it (status `paused`
# until they join a group again), or `end` it (status `removed`, reason "left every chat group").
ChatLeavePolicy = Literal["keep", "pause", "end"]


class CommunitySettings(SQLModel):
    """Paywall, expiry, privacy and policy settings (owner and admins edit them; billing ones the owner)."""

    reading_limit_days: int | None = Field(
        default=None, ge=7, le=100, description="New members see only content of the last N days; null = off."
    )
    grace_period_days: int = Field(default=0, ge=0, le=60, description="Access kept after expiry.")
    reminder_days: list[int] = Field(
        default_factory=lambda: [7, 1], sa_column=Column(JSON, nullable=False),
        description="Renewal reminders, days before expiry.",
    )
    reminder_local_time: str = Field(
        default="10:00", max_length=5,  # HH:MM, checked on CommunitySettingsUpdate
        description="Local time (community zone) at which reminders go out.",
    )
    guest_limit: int = Field(default=50, ge=0, le=10000)
    tiers: list[str] = Field(
        default_factory=lambda: ["standard"], sa_column=Column(JSON, nullable=False),
        description="Plan tiers from lowest to highest (the paywall compares ranks).",
    )
    member_list_visible: bool = Field(default=False, description="Members may see the member list.")
    contact_visible: bool = Field(default=False, description="Members may see each other's contact details.")
    unpaid_join_policy: UnpaidJoinPolicy = Field(default="flag", sa_type=String(10))
    removal_policy: RemovalPolicy = Field(default="review", sa_type=String(10))
    chat_join_policy: ChatJoinPolicy | None = Field(
        default=None, sa_type=String(10),
        description="A chat join without a membership: admit | flag | ignore (unset: admit when the entry "
                    "policy is free, else flag).")
    chat_leave_policy: ChatLeavePolicy = Field(
        default="keep", sa_type=String(10),
        description="A member who left every chat group: keep | pause | end the membership.")
    referral_commission_bps: int = Field(default=0, ge=0, le=5000, description="Referrer's share, basis points.")
    term_anniversary: str | None = Field(
        default=None, max_length=5,  # MM-DD, checked on CommunitySettingsUpdate
        description="MM-DD on which fixed_term memberships end; default: the community's creation date.",
    )


class CommunitySettingsUpdate(Body):
    # SQLModel hands `regex=` to pydantic v2, which ignores it: patterns go in `schema_extra`.
    reading_limit_days: int | None = Field(default=None, ge=7, le=100)
    reading_limit_off: bool = Field(default=False, description="Turn the reading limit off.")
    grace_period_days: int | None = Field(default=None, ge=0, le=60)
    reminder_days: list[int] | None = Field(default=None, max_length=5)
    reminder_local_time: str | None = Field(default=None, schema_extra={"pattern": r"^([01]\d|2[0-3]):[0-5]\d$"})
    guest_limit: int | None = Field(default=None, ge=0, le=10000)
    tiers: list[str] | None = Field(default=None, min_length=1, max_length=10)
    member_list_visible: bool | None = None
    contact_visible: bool | None = None
    unpaid_join_policy: UnpaidJoinPolicy | None = None
    removal_policy: RemovalPolicy | None = None
    chat_join_policy: ChatJoinPolicy | None = None
    chat_leave_policy: ChatLeavePolicy | None = None
    referral_commission_bps: int | None = Field(default=None, ge=0, le=5000)
    term_anniversary: str | None = Field(
        default=None, schema_extra={"pattern": r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"}
    )

    @field_validator("reminder_days")
    @classmethod
    def _days(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(d < 0 or d > 60 for d in value):
            raise ValueError("reminder days must be within 0..60")
        return None if value is None else sorted(set(value), reverse=True)

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(set(value)) != len(value) or any(not t or len(t) > 50 for t in value)):
            raise ValueError("tiers must be distinct non-empty names of at most 50 characters")
        return value

    @model_validator(mode="after")
    def _limit(self) -> CommunitySettingsUpdate:
        if self.reading_limit_off and self.reading_limit_days is not None:
            raise ValueError("reading_limit_off and reading_limit_days exclude each other")
        return self


class RitualConfig(SQLModel):
    ritual_enabled: bool = Field(default=False, description="Joined members stay pending_ritual until done.")
    intro_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INTRO_FIELDS), sa_column=Column(JSON, nullable=False)
    )
    nickname_pattern: str = Field(default=DEFAULT_NICKNAME_PATTERN, max_length=100)


class RitualUpdate(Body):
    ritual_enabled: bool | None = None
    intro_fields: list[str] | None = Field(default=None, min_length=1, max_length=10)
    nickname_pattern: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("intro_fields")
    @classmethod
    def _fields(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not f.strip() or len(f) > 30 for f in value):
            raise ValueError("intro fields must be non-empty labels of at most 30 characters")
        return value

    @field_validator("nickname_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None and len([p for p in value.split("-") if p.strip()]) < 1:
            raise ValueError("nickname pattern needs at least one part")
        return value


class Community(CommunityBase, CommunitySettings, RitualConfig, MembershipModel, table=True):
    __table_args__ = (
        CheckConstraint("guest_count >= 0 AND guest_count <= guest_limit", name="guest_count_within_limit"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    owner_id: str = Field(max_length=100, index=True)
    entry_policies: list[str] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="active", max_length=20)
    template: str | None = Field(default=None, max_length=30)
    rules_version: int = Field(default=0, ge=0)
    guest_count: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class CommunityPublic(CommunityBase):
    """What anyone may see before joining: the positioning, the entry policy and the rules version."""

    id: str
    owner_id: str
    entry_policies: list[EntryPolicy]
    status: str = "active"
    template: str | None = None
    rules_version: int = 0
    created_at: datetime


class CommunitiesPublic(SQLModel):
    data: list[CommunityPublic]
    count: int


class CommunitySettingsPublic(CommunitySettings, RitualConfig):
    community_id: str
    guest_count: int


class CommunityRules(MembershipModel, table=True):
    """Rules (群规) are versioned; a member accepts the current version when joining."""

    __tablename__ = "community_rules"

    community_id: str = Field(foreign_key="community.id", primary_key=True, max_length=36)
    version: int = Field(primary_key=True, ge=1)
    text: str = Field(max_length=20000)
    published_by: str = Field(max_length=200)
    published_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class RulesCreate(Body):
    text: str = Field(min_length=1, max_length=20000)


class RulesPublic(SQLModel):
    community_id: str
    version: int
    text: str
    published_at: datetime
