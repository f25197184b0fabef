"""Request and response shapes of posts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# post.published carries the level: the request takes exactly the contract's values.
from qunzhu_common.events.contracts.content import Level


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000, description="Reference to stored media; content keeps no files.")
    kind: Literal["image", "file", "video", "audio", "link"] = "file"


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body_md: str = Field(default="", max_length=100000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=20)
    level: Level | None = None
    required_tier: str = Field(default="", max_length=50, description="'' = every active member may read.")
    publish: bool = Field(default=False, description="Publish at once (else a draft, or scheduled by publish_at).")
    publish_at: AwareDatetime | None = None


class PostUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body_md: str | None = Field(default=None, max_length=100000)
    attachments: list[Attachment] | None = None
    tags: list[str] | None = Field(default=None, max_length=20)
    level: Level | None = None
    required_tier: str | None = Field(default=None, max_length=50)


class QuestionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body_md: str = Field(default="", max_length=20000)
    tags: list[str] = Field(default_factory=list, max_length=20)


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body_md: str = Field(min_length=1, max_length=20000)


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    publish_at: AwareDatetime


class FeatureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    featured: bool = True


class PostPublic(BaseModel):
    id: str
    community_id: str
    kind: str
    author_id: str
    title: str
    body_md: str
    attachments: list[dict]
    tags: list[str]
    level: str | None
    required_tier: str
    state: str
    featured: bool
    publish_at: datetime | None
    session_id: str | None
    comments: int
    created_at: datetime
    published_at: datetime | None


class PostTeaser(BaseModel):
    """What a reader without access sees in lists: enough to want it, not the body."""

    id: str
    kind: str
    author_id: str
    title: str
    tags: list[str]
    level: str | None
    required_tier: str
    featured: bool
    comments: int
    published_at: datetime | None


class PostsPublic(BaseModel):
    data: list[PostTeaser]
    count: int


class CommentPublic(BaseModel):
    id: str
    post_id: str
    kind: str
    author_id: str
    body_md: str
    created_at: datetime
