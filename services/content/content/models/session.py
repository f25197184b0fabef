"""Guest sharing sessions (嘉宾分享): the session, its relayed talk, questions and attendance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from content.models.base import ContentModel, json_column, new_id, seq_column
from qunzhu_common.db.types import AwareDateTime


class SharingSession(ContentModel, table=True):
    __tablename__ = "sharing_session"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=100, index=True)
    topic: str = Field(max_length=200)
    description: str = Field(default="", max_length=5000)
    guest_id: str = Field(max_length=200)
    guest_name: str = Field(default="", max_length=200)
    host_id: str = Field(max_length=200)
    starts_at: datetime = Field(sa_type=AwareDateTime)
    ends_at: datetime = Field(sa_type=AwareDateTime)
    timezone: str = Field(max_length=64)
    source_group_id: str = Field(max_length=200, index=True)
    target_group_ids: list[str] = Field(default_factory=list, sa_column=json_column())
    status: str = Field(default="scheduled", max_length=20)  # scheduled | live | ended | cancelled
    summary_draft: str = Field(default="", max_length=100000)
    summary_post_id: str | None = Field(default=None, max_length=36)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)
    started_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class SessionMessage(ContentModel, table=True):
    """A message of the guest or host in the source group during the session (the talk, in order)."""

    __tablename__ = "session_message"
    __table_args__ = (UniqueConstraint("session_id", "message_id"),)

    seq: int | None = Field(default=None, sa_column=seq_column())
    session_id: str = Field(max_length=36, foreign_key="sharing_session.id", index=True)
    message_id: str = Field(max_length=200)
    sender_id: str = Field(max_length=200)
    sender_name: str = Field(default="", max_length=200)
    text: str = Field(max_length=20000)
    sent_at: datetime = Field(sa_type=AwareDateTime)
    broadcast_id: str | None = Field(default=None, max_length=36)


class SessionQuestion(ContentModel, table=True):
    """A question for the Q&A part (a message marked `?`/`？`, or the question command)."""

    __tablename__ = "session_question"
    __table_args__ = (UniqueConstraint("session_id", "message_id"),)

    seq: int | None = Field(default=None, sa_column=seq_column())
    session_id: str = Field(max_length=36, foreign_key="sharing_session.id", index=True)
    group_id: str = Field(max_length=200)
    message_id: str = Field(max_length=200)
    asker_id: str = Field(max_length=200)
    asker_name: str = Field(default="", max_length=200)
    text: str = Field(max_length=20000)
    asked_at: datetime = Field(sa_type=AwareDateTime)


class SessionAttendance(ContentModel, table=True):
    """Who posted in which group during the session, and how many messages."""

    __tablename__ = "session_attendance"

    session_id: str = Field(primary_key=True, max_length=36, foreign_key="sharing_session.id")
    group_id: str = Field(primary_key=True, max_length=200)
    person_id: str = Field(primary_key=True, max_length=200)
    messages: int = 0
    first_at: datetime = Field(sa_type=AwareDateTime)
