"""Events produced by the membership service on membership.events.v1."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.events.registry import EventSpec
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS

EntryPolicy = Literal["free", "paid", "invite_only", "application", "referral_required"]


class CommunityCreated(BaseModel):
    """A community was created; every service keeps its own copy of what it needs."""

    model_config = ConfigDict(extra="forbid")

    community_id: str
    name: str = Field(min_length=1, max_length=100)
    positioning: str = Field(min_length=1, max_length=280)
    owner_id: str
    timezone: str = "Asia/Shanghai"
    entry_policies: list[EntryPolicy] = Field(default_factory=lambda: ["free"])
    created_at: AwareDatetime


Role = Literal["owner", "admin", "guest", "member"]
MemberStatus = Literal[
    "applied", "rejected", "pending_payment", "pending_ritual", "active", "expired", "removed", "blacklisted"
]


class MemberChanged(BaseModel):
    """The state of one membership after a change; every member.* event carries it whole."""

    model_config = ConfigDict(extra="forbid")

    community_id: str
    member_id: PersonId
    display_name: str = Field(default="", max_length=200)
    role: Role
    status: MemberStatus
    tier: str = Field(default="", max_length=50, description="Plan tier used by the paywall; '' when free.")
    joined_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    reason: str = Field(default="", max_length=500, description="Why (removal, rejection, expiry…).")
    changed_at: AwareDatetime


def _member(type_: str, description: str) -> EventSpec:
    return EventSpec(type=type_, version=1, topic=MEMBERSHIP_EVENTS, payload=MemberChanged, description=description)


MEMBERSHIP_SPECS = (
    EventSpec(
        type="community.created",
        version=1,
        topic=MEMBERSHIP_EVENTS,
        payload=CommunityCreated,
        description="A community was created by its owner.",
    ),
    _member("member.applied", "Someone applied to join; awaits review."),
    _member("member.joined", "A membership was created (may still await payment or the joining ritual)."),
    _member("member.activated", "A membership became active."),
    _member("member.renewed", "An active membership was extended."),
    _member("member.expired", "A membership ran out."),
    _member("member.removed", "A member was removed (the reason says why)."),
    _member("member.role_changed", "A member's role changed (owner, admin, guest, member)."),
)
