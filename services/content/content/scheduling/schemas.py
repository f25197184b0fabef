"""Request and response shapes of schedules, rituals and digests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from content.community.service import Audience
from content.scheduling import rules


class _Timing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime = Field(description="The first occurrence (DTSTART); alone, a one-off.")
    timezone: str | None = Field(default=None, description="IANA zone the rule runs in; default the community's.")
    rrule: str | None = Field(
        default=None, max_length=500, description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=SU;BYHOUR=20;BYMINUTE=30"
    )
    until_at: AwareDatetime | None = Field(default=None, description="End date: no occurrence after it.")
    misfire_grace_s: int | None = Field(default=None, ge=0, le=86400, description="Default 300 s.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            rules.zone(value)
        return value

    @field_validator("rrule")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        return rules.check_rule(value, "UTC") if value is not None else None


class ScheduleCreate(_Timing):
    """A scheduled broadcast: the same text to the audience's groups at each occurrence."""

    title: str = Field(default="", max_length=200)
    text: str = Field(min_length=1, max_length=20000)
    audience: Audience = Field(default_factory=Audience)
    action: Literal["send_message", "announce"] = "send_message"
    mention_all: bool = False


class RitualCreate(_Timing):
    """A recurring themed event (e.g. every Friday 21:00 福利夜) with countdowns before each one."""

    rrule: str = Field(max_length=500)  # type: ignore[assignment]
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=5000)
    audience: Audience = Field(default_factory=Audience)
    countdown_offsets_s: list[int] | None = Field(default=None, description="Seconds before; default T-24h, T-1h.")

    @field_validator("countdown_offsets_s")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(v <= 0 for v in value):
            raise ValueError("countdown offsets are seconds before the event, so positive")
        return value


class DigestCreate(_Timing):
    rrule: str = Field(default="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", max_length=500)  # type: ignore[assignment]
    title: str = Field(default="本周精华", max_length=200)
    audience: Audience = Field(default_factory=Audience)


class EndDate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until_at: AwareDatetime | None


class ExceptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occurs_at: AwareDatetime = Field(description="The occurrence (rule time) that must not fire.")


class SchedulePublic(BaseModel):
    id: str
    community_id: str
    kind: str
    title: str
    rrule: str | None
    timezone: str
    starts_at: datetime
    until_at: datetime | None
    offset_s: int
    misfire_grace_s: int
    status: str
    payload: dict[str, Any]
    owner_ref: str | None
    next_occurs_at: datetime | None = Field(
        description="The next occurrence that will fire (the first of `upcoming`); null while paused or finished."
    )
    next_due_at: datetime | None = Field(
        description="When that occurrence's action runs (`next_occurs_at` + `offset_s`); null while paused."
    )
    created_at: datetime
    upcoming: list[datetime] = Field(
        default_factory=list,
        description=(
            "Up to 5 next occurrences that will fire (rule times): exception dates and anything past `until_at` "
            "are left out, and a paused schedule (`status: paused`) has none until it is resumed."
        ),
    )
    exceptions: list[datetime] = Field(default_factory=list, description="Occurrences that will not fire.")


class OccurrencePublic(BaseModel):
    id: str
    schedule_id: str
    kind: str
    occurs_at: datetime
    due_at: datetime
    status: str
    fired_at: datetime | None
    lateness_s: float | None
    skip_reason: str | None
    detail: str


class RitualPublic(BaseModel):
    id: str
    community_id: str
    title: str
    text: str
    countdown_offsets_s: list[int]
    status: str
    schedules: list[SchedulePublic]
