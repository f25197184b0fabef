"""Post routes: authoring, scheduling, Q&A, comments, 精华, reading through the paywall hook."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, model_validator

from content.community.service import get_community
from content.deps import Anyone, ContextDep, GuestOf, MemberOf, SignedIn, StaffOf
from content.posts import mix, service
from content.posts.schemas import (
    CommentCreate,
    CommentPublic,
    FeatureRequest,
    PostCreate,
    PostPublic,
    PostsPublic,
    PostTeaser,
    PostUpdate,
    QuestionCreate,
    ScheduleRequest,
)
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}", tags=["posts"])


def _public(post) -> PostPublic:
    return PostPublic(**post.model_dump(include=set(PostPublic.model_fields)))


@router.post("/posts", status_code=status.HTTP_201_CREATED, response_model=PostPublic)
async def create_post(
    community_id: str, body: PostCreate, session: SessionDep, ctx: ContextDep, caller: GuestOf
) -> PostPublic:
    """Write a post (owner, admins, guests only): a draft, published now, or scheduled by `publish_at`."""
    return _public(
        await service.create_post(
            session, ctx=ctx, community_id=community_id, actor=caller.actor, data=body, now=ctx.clock.now()
        )
    )


@router.post("/questions", status_code=status.HTTP_201_CREATED, response_model=PostPublic)
async def ask_question(
    community_id: str, body: QuestionCreate, session: SessionDep, ctx: ContextDep, caller: MemberOf
) -> PostPublic:
    """A member asks a question (members); owner, admins and guests answer it with comments."""
    return _public(
        await service.ask_question(
            session, ctx=ctx, community_id=community_id, actor=caller.actor, data=body, now=ctx.clock.now()
        )
    )


@router.get("/posts", response_model=PostsPublic)
async def list_posts(
    community_id: str,
    session: SessionDep,
    reader: Anyone,
    kind: Annotated[Literal["article", "question", "summary"] | None, Query()] = None,
    featured: bool | None = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PostsPublic:
    """Public (anyone, signed in or not): published posts, newest first, as teasers (the body is read
    through the paywall)."""
    await get_community(session, community_id=community_id)
    rows, count = await service.list_posts(
        session, community_id=community_id, kind=kind, featured=featured, tag=tag, offset=offset, limit=limit
    )
    return PostsPublic(
        data=[PostTeaser(**p.model_dump(include=set(PostTeaser.model_fields))) for p in rows], count=count
    )


@router.get("/posts/{post_id}", response_model=PostPublic)
async def read_post(community_id: str, post_id: str, session: SessionDep, reader: SignedIn) -> PostPublic:
    """Read a post (any signed-in reader may ask; 401 without one): drafts only for their editors;
    published ones through the paywall decision (402)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    return _public(await service.read(session, post=post, reader=reader))


@router.patch("/posts/{post_id}", response_model=PostPublic)
async def update_post(
    community_id: str, post_id: str, body: PostUpdate, session: SessionDep, ctx: ContextDep, caller: GuestOf
) -> PostPublic:
    """Edit a post (its author, still a guest or up, or the owner/an admin)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    return _public(await service.update_post(session, post=post, actor=caller.actor, data=body, now=ctx.clock.now()))


@router.post("/posts/{post_id}/publish", response_model=PostPublic)
async def publish_post(
    community_id: str, post_id: str, session: SessionDep, ctx: ContextDep, caller: GuestOf
) -> PostPublic:
    """Publish a draft (or a scheduled post) now (its author or the owner/an admin)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    return _public(await service.publish_by_actor(session, ctx=ctx, post=post, actor=caller.actor, now=ctx.clock.now()))


@router.post("/posts/{post_id}/schedule", response_model=PostPublic)
async def schedule_post(
    community_id: str, post_id: str, body: ScheduleRequest, session: SessionDep, ctx: ContextDep, caller: GuestOf
) -> PostPublic:
    """Publish a draft at a set time (fires once, like every schedule; its author or the owner/an admin)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    return _public(
        await service.schedule_publication(
            session, ctx=ctx, post=post, publish_at=body.publish_at, actor=caller.actor, now=ctx.clock.now()
        )
    )


@router.post("/posts/{post_id}/archive", response_model=PostPublic)
async def archive_post(
    community_id: str, post_id: str, session: SessionDep, ctx: ContextDep, caller: GuestOf
) -> PostPublic:
    """Archive a post (hidden from lists and the digest; its author or the owner/an admin)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    return _public(await service.archive(session, ctx=ctx, post=post, actor=caller.actor, now=ctx.clock.now()))


@router.put("/posts/{post_id}/featured", response_model=PostPublic)
async def feature_post(
    community_id: str, post_id: str, body: FeatureRequest, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> PostPublic:
    """Mark or unmark a post as 精华 (owner/admin)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    return _public(
        await service.set_featured(
            session, ctx=ctx, post=post, actor=caller.actor, featured=body.featured, now=ctx.clock.now()
        )
    )


@router.post("/posts/{post_id}/comments", status_code=status.HTTP_201_CREATED, response_model=CommentPublic)
async def comment(
    community_id: str, post_id: str, body: CommentCreate, session: SessionDep, ctx: ContextDep, caller: MemberOf
) -> CommentPublic:
    """Comment on a post you may read (members); on a question, an owner/admin/guest's comment is an answer."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    row = await service.comment(
        session, ctx=ctx, post=post, actor=caller.actor, body_md=body.body_md, now=ctx.clock.now()
    )
    return CommentPublic(**row.model_dump(include=set(CommentPublic.model_fields)))


@router.get("/posts/{post_id}/comments", response_model=list[CommentPublic])
async def comments(community_id: str, post_id: str, session: SessionDep, reader: SignedIn) -> list[CommentPublic]:
    """Comments and answers, oldest first (any signed-in reader may ask; readers of the post only, as
    `read_post`)."""
    post = await service.get_post(session, post_id=post_id, community_id=community_id)
    await service.read(session, post=post, reader=reader)
    return [
        CommentPublic(**c.model_dump(include=set(CommentPublic.model_fields)))
        for c in await service.comments_of(session, post_id=post_id)
    ]


class MixTargets(BaseModel):
    beginner_pct: float = Field(ge=0, le=100)
    intermediate_pct: float = Field(ge=0, le=100)
    advanced_pct: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _sum(self) -> MixTargets:
        if abs(self.beginner_pct + self.intermediate_pct + self.advanced_pct - 100) > 0.01:
            raise ValueError("the three shares must add up to 100")
        return self


class MixReport(BaseModel):
    window_days: int
    posts: int
    threshold_pct: float
    shares: list[dict]
    off_levels: list[str]


@router.get("/content-mix", response_model=MixReport)
async def content_mix(
    community_id: str,
    session: SessionDep,
    ctx: ContextDep,
    caller: StaffOf,
    days: Annotated[int | None, Query(ge=1, le=365)] = None,
) -> MixReport:
    """Actual share of articles per level vs target over the last 4 weeks (default; owner/admin)."""
    await get_community(session, community_id=community_id)
    shares, off, total = await mix.report(session, ctx=ctx, community_id=community_id, now=ctx.clock.now(), days=days)
    return MixReport(
        window_days=days or ctx.settings.content_mix_window_days,
        posts=total,
        threshold_pct=ctx.settings.content_mix_threshold_pct,
        shares=[s.model_dump() for s in shares],
        off_levels=off,
    )


@router.put("/content-mix", response_model=MixTargets)
async def set_content_mix(
    community_id: str, body: MixTargets, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> MixTargets:
    """Set the target share per level (owner/admin); default 30 / 50 / 20."""
    await get_community(session, community_id=community_id)
    await mix.set_targets(
        session,
        community_id=community_id,
        beginner=body.beginner_pct,
        intermediate=body.intermediate_pct,
        advanced=body.advanced_pct,
        now=ctx.clock.now(),
    )
    return body
