"""Request and response shapes of sharing sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from content.scheduling import rules
from qunzhu_common.events.contracts.content import Level
from qunzhu_common.events.contracts.identity import GroupId, PersonId


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    guest_id: PersonId
    guest_name: str = Field(default="", max_length=200)
    host_id: PersonId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    timezone: str | None = Field(default=None, description="Defaults to the community's zone.")
    source_group_id: GroupId
    target_group_ids: list[GroupId] = Field(min_length=1, max_length=500)
    preview_offsets_s: list[int] | None = Field(
        default=None, description="Seconds before the start; default T-48h, T-1h, T-5min."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            rules.zone(value)
        return value

    @field_validator("preview_offsets_s")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(v <= 0 for v in value):
            raise ValueError("preview offsets are seconds before the start, so positive")
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> SessionCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SummaryApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200)
    body_md: str | None = Field(default=None, max_length=100000, description="The edited summary; default the draft.")
    level: Level | None = None
    required_tier: str = Field(default="", max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=20)


class NoticePublic(BaseModel):
    """A notice of the session to its groups (a preview): when it is due, whether and when it went out."""

    kind: Literal["preview"]
    offset_s: int = Field(description="Seconds before the start it was due.")
    due_at: datetime
    status: Literal["scheduled", "due", "sent", "skipped", "failed", "cancelled"]
    sent_at: datetime | None = Field(description="When it went out to the groups (its broadcast was made).")
    catch_up: bool = Field(description="Sent at once for previews whose time had passed when the session was created.")
    broadcast_id: str | None = Field(description="The broadcast carrying it, with its delivery per group.")
    schedule_id: str


class SummaryGroupDelivery(BaseModel):
    group_id: str
    status: Literal["delivering", "delivered", "failed"]
    parts: int = Field(description="Messages the summary was split into for this group's platform.")
    delivered_parts: int
    failed_parts: int
    attempts: int
    last_error: str
    part_statuses: list[Literal["pending", "sending", "delivered", "failed"]] = Field(description="In order.")


class SummaryDelivery(BaseModel):
    """The approved summary on its way to the groups, tracked like a broadcast (one per part and platform)."""

    status: Literal["none", "delivering", "delivered", "partially_delivered", "failed"]
    post_id: str
    delivered: int = 0
    failed: int = 0
    groups: list[SummaryGroupDelivery]


class SessionPublic(BaseModel):
    id: str
    community_id: str
    topic: str
    description: str
    guest_id: str
    guest_name: str
    host_id: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    source_group_id: str
    target_group_ids: list[str]
    status: str
    summary_draft: str
    summary_post_id: str | None
    started_at: datetime | None
    ended_at: datetime | None
    notices: list[NoticePublic] = Field(default_factory=list, description="Its previews, in the order they are due.")
    summary_delivery: SummaryDelivery | None = Field(
        default=None, description="After the summary is approved: its delivery to each group (on one session)."
    )


class SessionsPublic(BaseModel):
    data: list[SessionPublic]
    count: int = Field(description="Sessions matching the filters, over all pages.")


class QuestionPublic(BaseModel):
    group_id: str
    asker_id: str
    asker_name: str
    text: str
    asked_at: datetime
