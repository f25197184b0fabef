"""Posts: authoring rights, states draft → scheduled → published → archived, Q&A, comments, 精华."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.community.service import AUTHORS, STAFF, get_community, require_role, role_of
from content.context import ContentContext
from content.errors import InvalidField, InvalidState, NotAllowed, PostNotFound
from content.models import Post, PostComment
from content.posts.mix import check_mix
from content.posts.paywall import decide_read_access
from content.posts.schemas import PostCreate, PostUpdate, QuestionCreate
from content.scheduling.service import cancel as cancel_schedule
from content.scheduling.service import create_schedule, get_schedule
from qunzhu_common.actor import Actor
from qunzhu_common.errors import PaymentRequired, Unauthorized
from qunzhu_common.events.contracts.content import CommentPosted, PostFeatured, PostPublished

MEMBERS = ("owner", "admin", "guest", "member")


async def create_post(
    session: AsyncSession, *, ctx: ContentContext, community_id: str, actor: Actor, data: PostCreate, now: datetime
) -> Post:
    """Only the owner, admins and guests author posts (Knowledge Planet's rule, 003)."""
    await require_role(session, community_id=community_id, actor=actor, roles=AUTHORS, doing="author posts")
    if data.publish and data.publish_at is not None:
        raise InvalidField("publish_at", "give either publish=true or publish_at, not both")
    post = Post(
        community_id=community_id,
        kind="article",
        author_id=actor.id,
        title=data.title,
        body_md=data.body_md,
        attachments=[a.model_dump() for a in data.attachments],
        tags=list(dict.fromkeys(data.tags)),
        level=data.level,
        required_tier=data.required_tier,
        created_at=now,
        updated_at=now,
    )
    session.add(post)
    await session.flush()
    if data.publish:
        await publish(session, ctx=ctx, post=post, now=now)
    elif data.publish_at is not None:
        await schedule_publication(session, ctx=ctx, post=post, publish_at=data.publish_at, actor=actor, now=now)
    return post


async def get_post(session: AsyncSession, *, post_id: str, community_id: str | None = None) -> Post:
    post = await session.get(Post, post_id)
    if post is None or (community_id is not None and post.community_id != community_id):
        raise PostNotFound(f"post {post_id} does not exist")
    return post


async def _require_editor(session: AsyncSession, *, post: Post, actor: Actor, doing: str) -> None:
    """The author (still in an author role) or the owner/an admin (admin API keys, the platform operator)."""
    role = await role_of(session, community_id=post.community_id, actor=actor)
    if role in STAFF or (actor.id == post.author_id and role in AUTHORS):
        return
    raise NotAllowed(f"{actor.id} may not {doing} this post")


async def update_post(session: AsyncSession, *, post: Post, actor: Actor, data: PostUpdate, now: datetime) -> Post:
    await _require_editor(session, post=post, actor=actor, doing="edit")
    if post.state == "archived":
        raise InvalidState("an archived post cannot be edited")
    changes = data.model_dump(exclude_unset=True)
    if "attachments" in changes and changes["attachments"] is not None:
        changes["attachments"] = [dict(a) for a in changes["attachments"]]
    for name, value in changes.items():
        if value is not None or name == "level":
            setattr(post, name, value)
    post.updated_at = now
    return post


async def publish(
    session: AsyncSession, *, ctx: ContentContext, post: Post, now: datetime, guest_id: str | None = None
) -> Post:
    if post.state not in ("draft", "scheduled"):
        raise InvalidState(f"a {post.state} post cannot be published")
    post.state, post.published_at, post.updated_at = "published", now, now
    await ctx.outbox.emit(
        session,
        type="post.published",
        community_id=post.community_id,
        data=PostPublished(
            community_id=post.community_id,
            post_id=post.id,
            kind=post.kind,
            author_id=post.author_id,
            title=post.title,
            level=post.level,
            tags=post.tags,
            required_tier=post.required_tier,
            featured=post.featured,
            session_id=post.session_id,
            guest_id=guest_id,
            published_at=now,
        ),
    )
    if post.kind == "article" and post.level is not None:
        await session.flush()
        await check_mix(session, ctx=ctx, community_id=post.community_id, now=now)
    return post


async def publish_by_actor(
    session: AsyncSession, *, ctx: ContentContext, post: Post, actor: Actor, now: datetime
) -> Post:
    await _require_editor(session, post=post, actor=actor, doing="publish")
    if post.schedule_id is not None:
        await cancel_schedule(
            session, ctx=ctx, schedule=await get_schedule(session, schedule_id=post.schedule_id), now=now
        )
        post.schedule_id = None
    return await publish(session, ctx=ctx, post=post, now=now)


async def schedule_publication(
    session: AsyncSession, *, ctx: ContentContext, post: Post, publish_at: datetime, actor: Actor, now: datetime
) -> Post:
    await _require_editor(session, post=post, actor=actor, doing="schedule")
    if post.state != "draft":
        raise InvalidState(f"a {post.state} post cannot be scheduled")
    if publish_at <= now:
        raise InvalidField("publish_at", "must be in the future")
    community = await get_community(session, community_id=post.community_id)
    schedule = await create_schedule(
        session,
        ctx=ctx,
        community_id=post.community_id,
        kind="post_publish",
        starts_at=publish_at,
        timezone=community.timezone,
        created_by=actor.recorded_as,
        now=now,
        title=post.title,
        payload={"post_id": post.id},
        owner_ref=f"post:{post.id}",
    )
    post.state, post.publish_at, post.schedule_id, post.updated_at = "scheduled", publish_at, schedule.id, now
    return post


async def publish_scheduled(session: AsyncSession, *, ctx: ContentContext, post_id: str, now: datetime) -> None:
    post = await get_post(session, post_id=post_id)
    if post.state != "scheduled":
        raise InvalidState(f"post is {post.state}, not scheduled")
    await publish(session, ctx=ctx, post=post, now=now)


async def archive(session: AsyncSession, *, ctx: ContentContext, post: Post, actor: Actor, now: datetime) -> Post:
    await _require_editor(session, post=post, actor=actor, doing="archive")
    if post.state == "archived":
        return post
    if post.schedule_id is not None and post.state == "scheduled":
        await cancel_schedule(
            session, ctx=ctx, schedule=await get_schedule(session, schedule_id=post.schedule_id), now=now
        )
    post.state, post.archived_at, post.updated_at = "archived", now, now
    return post


async def set_featured(
    session: AsyncSession, *, ctx: ContentContext, post: Post, actor: Actor, featured: bool, now: datetime
) -> Post:
    """精华: the owner and admins pick the best content for the digest."""
    await require_role(session, community_id=post.community_id, actor=actor, roles=STAFF, doing="feature posts")
    if post.state != "published":
        raise InvalidState("only a published post can be featured")
    if post.featured != featured:
        post.featured, post.updated_at = featured, now
        await ctx.outbox.emit(
            session,
            type="post.featured",
            community_id=post.community_id,
            data=PostFeatured(
                community_id=post.community_id,
                post_id=post.id,
                author_id=post.author_id,
                featured=featured,
                by_id=actor.recorded_as,
                changed_at=now,
            ),
        )
    return post


async def ask_question(
    session: AsyncSession, *, ctx: ContentContext, community_id: str, actor: Actor, data: QuestionCreate, now: datetime
) -> Post:
    """Members ask (提问); the owner, admins and guests answer."""
    await require_role(session, community_id=community_id, actor=actor, roles=MEMBERS, doing="ask questions")
    post = Post(
        community_id=community_id,
        kind="question",
        author_id=actor.id,
        title=data.title,
        body_md=data.body_md,
        tags=list(dict.fromkeys(data.tags)),
        created_at=now,
        updated_at=now,
    )
    session.add(post)
    await session.flush()
    return await publish(session, ctx=ctx, post=post, now=now)


async def comment(
    session: AsyncSession, *, ctx: ContentContext, post: Post, actor: Actor, body_md: str, now: datetime
) -> PostComment:
    """A comment by any active member; on a question, an owner/admin/guest's comment is an answer."""
    await read(session, post=post, reader=actor)
    role = await require_role(session, community_id=post.community_id, actor=actor, roles=MEMBERS, doing="comment")
    kind = "answer" if post.kind == "question" and role in AUTHORS else "comment"
    row = PostComment(
        post_id=post.id, community_id=post.community_id, kind=kind, author_id=actor.id, body_md=body_md, created_at=now
    )
    session.add(row)
    post.comments += 1
    await session.flush()
    await ctx.outbox.emit(
        session,
        type="comment.posted",
        community_id=post.community_id,
        data=CommentPosted(
            community_id=post.community_id,
            comment_id=row.id,
            post_id=post.id,
            kind=kind,
            author_id=actor.id,
            post_author_id=post.author_id,
            post_kind=post.kind,
            posted_at=now,
        ),
    )
    return row


async def read(session: AsyncSession, *, post: Post, reader: Actor | None) -> Post:
    """The post if `reader` may read it: drafts only for editors, the rest through the paywall hook.

    A body is for a signed-in reader (401 without one): the paywall decides per reader.
    """
    if reader is None:
        error = Unauthorized("sign in to read a post (anyone sees the teasers in the post list)")
        error.headers["WWW-Authenticate"] = 'Bearer realm="qunzhu"'
        raise error
    if post.state != "published":
        try:
            await _require_editor(session, post=post, actor=reader, doing="read")
        except NotAllowed:
            raise PostNotFound(f"post {post.id} does not exist") from None
        return post
    decision = await decide_read_access(session, post=post, reader=reader)
    if not decision.allowed:
        if decision.needs_payment:
            raise PaymentRequired(f"{decision.reason}", required_tier=post.required_tier)
        raise NotAllowed(decision.reason)
    return post


async def list_posts(
    session: AsyncSession,
    *,
    community_id: str,
    kind: str | None,
    featured: bool | None,
    tag: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Post], int]:
    query = select(Post).where(Post.community_id == community_id, Post.state == "published")
    if kind is not None:
        query = query.where(Post.kind == kind)
    if featured is not None:
        query = query.where(Post.featured == featured)
    rows = list((await session.execute(query.order_by(Post.published_at.desc(), Post.id))).scalars())
    if tag is not None:  # tags are a JSON list: filtered here to stay portable across both databases
        rows = [p for p in rows if tag in p.tags]
    return rows[offset : offset + limit], len(rows)


async def comments_of(session: AsyncSession, *, post_id: str) -> list[PostComment]:
    rows = await session.execute(
        select(PostComment).where(PostComment.post_id == post_id).order_by(PostComment.created_at, PostComment.id)
    )
    return list(rows.scalars())


async def count_posts(session: AsyncSession, *, community_id: str) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Post).where(Post.community_id == community_id)) or 0
    )
