"""Homework (作业): assignments, submissions (chat `作业` or API), grades 1–5, scholarships for the top 3."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from engagement.models.base import EngagementModel
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.events.contracts.identity import PersonId


class AssignmentCreate(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    code: str = Field(default="", max_length=20, description="Short code members may write after 作业, e.g. W3.")
    due_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    created_by: str = Field(default="", max_length=200)


class Assignment(AssignmentCreate, EngagementModel, table=True):
    __tablename__ = "assignment"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    community_id: str = Field(max_length=36, index=True)
    created_at: datetime = Field(sa_type=AwareDateTime)
    scholarships_awarded_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class AssignmentPublic(AssignmentCreate):
    id: str
    community_id: str
    created_at: datetime
    scholarships_awarded_at: datetime | None


class SubmissionCreate(SQLModel):
    person_id: PersonId = Field(description="`<platform>:<user id>`, as in scholarship.awarded.")
    content: str = Field(min_length=1, max_length=20000)


class Submission(EngagementModel, table=True):
    __tablename__ = "submission"
    __table_args__ = (UniqueConstraint("assignment_id", "person_id"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    assignment_id: str = Field(max_length=36, index=True)
    community_id: str = Field(max_length=36)
    person_id: str = Field(max_length=200)
    content: str = Field(default="", max_length=20000)
    source: str = Field(max_length=10, description="chat | api")
    submitted_at: datetime = Field(sa_type=AwareDateTime)
    grade: int | None = None
    graded_by: str | None = Field(default=None, max_length=200)
    graded_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    feedback: str = Field(default="", max_length=2000)
    scholarship_rank: int | None = None


class SubmissionPublic(SQLModel):
    id: str
    assignment_id: str
    person_id: str
    content: str
    source: str
    submitted_at: datetime
    grade: int | None
    graded_by: str | None
    graded_at: datetime | None
    feedback: str
    scholarship_rank: int | None


class GradeCreate(SQLModel):
    grade: int = Field(ge=1, le=5)
    graded_by: str = Field(min_length=3, max_length=200, description="An owner, admin or guest of the community.")
    feedback: str = Field(default="", max_length=2000)
