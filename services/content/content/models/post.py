"""Posts (articles, member questions, session summaries) and their comments/answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field

from content.models.base import ContentModel, json_column, new_id
from qunzhu_common.db.types import AwareDateTime


class Post(ContentModel, table=True):
    __tablename__ = "post"
    __table_args__ = (Index("ix_post_community_id_state_published_at", "community_id", "state", "published_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=100)
    kind: str = Field(default="article", max_length=20)  # article | question | summary
    author_id: str = Field(max_length=200)
    title: str = Field(max_length=200)
    body_md: str = Field(default="", max_length=100000)
    attachments: list[dict] = Field(default_factory=list, sa_column=json_column())
    tags: list[str] = Field(default_factory=list, sa_column=json_column())
    level: str | None = Field(default=None, max_length=20)
    required_tier: str = Field(default="", max_length=50)
    state: str = Field(default="draft", max_length=20)  # draft | scheduled | published | archived
    featured: bool = False
    publish_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    schedule_id: str | None = Field(default=None, max_length=36)
    session_id: str | None = Field(default=None, max_length=36)
    comments: int = 0
    created_at: datetime = Field(sa_type=AwareDateTime)
    updated_at: datetime = Field(sa_type=AwareDateTime)
    published_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=AwareDateTime)


class PostComment(ContentModel, table=True):
    __tablename__ = "post_comment"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    post_id: str = Field(max_length=36, foreign_key="post.id", index=True)
    community_id: str = Field(max_length=100)
    kind: str = Field(max_length=20)  # comment | answer
    author_id: str = Field(max_length=200)
    body_md: str = Field(max_length=20000)
    created_at: datetime = Field(sa_type=AwareDateTime)


class ContentMixTarget(ContentModel, table=True):
    """Target share per level (percent) of a community's published articles; default 30/50/20 (002)."""

    __tablename__ = "content_mix_target"

    community_id: str = Field(primary_key=True, max_length=100)
    beginner_pct: float = 30.0
    intermediate_pct: float = 50.0
    advanced_pct: float = 20.0
    off_levels: list[str] = Field(default_factory=list, sa_column=json_column(), description="Last warned.")
    updated_at: datetime = Field(sa_type=AwareDateTime)


class Ritual(ContentModel, table=True):
    """A recurring themed event (e.g. Friday 21:00 福利夜) with countdown messages before each one."""

    __tablename__ = "ritual"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=100, index=True)
    title: str = Field(max_length=200)
    text: str = Field(max_length=5000)
    countdown_offsets_s: list[int] = Field(default_factory=list, sa_column=json_column())
    status: str = Field(default="active", max_length=20)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)
