"""Events produced by the membership service on membership.events.v1."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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


MEMBERSHIP_SPECS = (
    EventSpec(
        type="community.created",
        version=1,
        topic=MEMBERSHIP_EVENTS,
        payload=CommunityCreated,
        description="A community was created by its owner.",
    ),
)
