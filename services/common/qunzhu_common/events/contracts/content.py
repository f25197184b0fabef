"""Events produced by the content service on content.events.v1 (owned by the content service).

Engagement scores posts, comments, sessions and attendance from these, so each payload carries the
community, the people involved (author, guest, host) and the chat groups concerned, with aware times.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import GroupId
from qunzhu_common.events.registry import EventSpec
from qunzhu_common.events.topics import CONTENT_EVENTS

Level = Literal["beginner", "intermediate", "advanced"]
PostKind = Literal["article", "question", "summary"]
CommentKind = Literal["comment", "answer"]


class _Content(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community_id: str = Field(max_length=100)


class PostPublished(_Content):
    """A post became visible (published now, at its scheduled time, or a session summary approved)."""

    post_id: str = Field(max_length=36)
    kind: PostKind
    author_id: str = Field(max_length=200, description="Person id of the author (owner/admin/guest, or the asker).")
    title: str = Field(max_length=200)
    level: Level | None = None
    tags: list[str] = Field(default_factory=list)
    required_tier: str = Field(default="", max_length=50, description="'' when free to every member.")
    featured: bool = False
    session_id: str | None = Field(default=None, max_length=36, description="Set for a session summary.")
    guest_id: str | None = Field(default=None, max_length=200, description="The session's guest, for a summary.")
    published_at: AwareDatetime


class PostFeatured(_Content):
    """A post was marked 精华 (featured) or unmarked."""

    post_id: str = Field(max_length=36)
    author_id: str = Field(max_length=200)
    featured: bool
    by_id: str = Field(max_length=200)
    changed_at: AwareDatetime


class CommentPosted(_Content):
    """A comment on a post, or an answer to a member's question."""

    comment_id: str = Field(max_length=36)
    post_id: str = Field(max_length=36)
    kind: CommentKind
    author_id: str = Field(max_length=200)
    post_author_id: str = Field(max_length=200)
    post_kind: PostKind
    posted_at: AwareDatetime


ScheduleKind = Literal[
    "broadcast",
    "post_publish",
    "session_preview",
    "session_start",
    "session_end",
    "ritual",
    "ritual_countdown",
    "digest",
]


class ScheduleFired(_Content):
    """One due occurrence of a schedule fired (exactly once across scheduler replicas)."""

    schedule_id: str = Field(max_length=36)
    occurrence_id: str = Field(max_length=36)
    kind: ScheduleKind
    occurs_at: AwareDatetime = Field(description="The rule's occurrence (e.g. the session start).")
    due_at: AwareDatetime = Field(description="occurs_at + the schedule's offset (e.g. T-1h).")
    fired_at: AwareDatetime
    lateness_s: float = Field(ge=0)


class OccurrenceSkipped(_Content):
    """A due occurrence was not fired: too late (misfire), an exception date, or its schedule paused."""

    schedule_id: str = Field(max_length=36)
    occurrence_id: str = Field(max_length=36)
    kind: ScheduleKind
    occurs_at: AwareDatetime
    due_at: AwareDatetime
    reason: Literal["misfire", "exception", "paused", "cancelled", "failed"]
    detail: str = Field(default="", max_length=500)
    skipped_at: AwareDatetime


class _Session(_Content):
    session_id: str = Field(max_length=36)
    topic: str = Field(max_length=200)
    guest_id: str = Field(max_length=200)
    host_id: str = Field(max_length=200)
    source_group_id: GroupId
    target_group_ids: list[GroupId]
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class SessionAnnounced(_Session):
    """A guest sharing session (嘉宾分享) was scheduled; previews will follow."""

    announced_at: AwareDatetime


class SessionStarted(_Session):
    started_at: AwareDatetime


class GroupAttendance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_id: GroupId
    attendee_ids: list[str] = Field(description="People who posted in this group during the session.")
    messages: int = Field(ge=0, description="Messages posted in this group during the session.")
    relayed_messages: int = Field(ge=0, description="Guest/host messages relayed into this group.")


class SessionEnded(_Session):
    """The session is over: attendance and messages per group, questions collected for the Q&A."""

    ended_at: AwareDatetime
    attendance: list[GroupAttendance]
    talk_messages: int = Field(ge=0, description="Messages of the guest or host in the source group.")
    questions: int = Field(ge=0)
    questioner_ids: list[str] = Field(default_factory=list)


class BroadcastDelivered(_Content):
    """Every group of a broadcast gave its final answer: confirmed, or failed for good (once per broadcast)."""

    broadcast_id: str = Field(max_length=36)
    source: Literal["manual", "schedule", "session", "relay", "ritual", "digest"]
    source_ref: str | None = Field(default=None, max_length=100)
    group_ids: list[GroupId]
    sent: int = Field(ge=0, description="Groups whose delivery the gateway confirmed.")
    failed: int = Field(ge=0, description="Groups whose delivery failed for good.")
    failed_group_ids: list[GroupId] = Field(default_factory=list)
    delivered_at: AwareDatetime
    status: Literal["delivered", "partially_delivered", "failed"] | None = Field(
        default=None, description="What the answers add up to (absent from producers before it was added)."
    )


class LevelShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Level
    target_pct: float
    actual_pct: float
    posts: int = Field(ge=0)


class ContentMixDeviated(_Content):
    """The published mix per level is more than the threshold off its target (content plan, 002)."""

    window_days: int = Field(ge=1)
    threshold_pct: float
    shares: list[LevelShare]
    off_levels: list[Level]
    checked_at: AwareDatetime


def _content(type_: str, payload: type[BaseModel], description: str) -> EventSpec:
    return EventSpec(type=type_, version=1, topic=CONTENT_EVENTS, payload=payload, description=description)


CONTENT_SPECS: tuple[EventSpec, ...] = (
    _content("post.published", PostPublished, "A post, question or session summary was published."),
    _content("post.featured", PostFeatured, "A post was marked or unmarked as featured (精华)."),
    _content("comment.posted", CommentPosted, "A comment or an answer was posted on a post."),
    _content("schedule.fired", ScheduleFired, "A scheduled occurrence fired."),
    _content("occurrence.skipped", OccurrenceSkipped, "A scheduled occurrence was skipped, with the reason."),
    _content("session.announced", SessionAnnounced, "A guest sharing session was scheduled."),
    _content("session.started", SessionStarted, "A guest sharing session started (live relay on)."),
    _content("session.ended", SessionEnded, "A guest sharing session ended, with attendance per group."),
    _content("broadcast.delivered", BroadcastDelivered, "A broadcast reached all its groups (or gave up)."),
    _content("content_mix.deviated", ContentMixDeviated, "The content mix per level is off its target."),
)
