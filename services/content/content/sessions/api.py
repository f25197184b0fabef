"""Sharing-session routes: schedule one (previews follow), see it, its questions; approve the summary."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from content.community.service import get_community
from content.deps import ContextDep, MemberOf, StaffOf
from content.errors import InvalidState
from content.models import Post
from content.posts import service as posts
from content.posts.schemas import PostPublic
from content.sessions import listing, service, summary
from content.sessions.schemas import QuestionPublic, SessionCreate, SessionPublic, SessionsPublic, SummaryApprove
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/sessions", tags=["sessions"])


def _public(shared, notices: list[dict] | None = None) -> SessionPublic:
    return SessionPublic(**shared.model_dump(include=set(SessionPublic.model_fields)), notices=notices or [])


async def _shown(session, shared) -> SessionPublic:
    """The session with its notices (which previews went out, and when)."""
    await session.flush()
    shown = _public(shared, (await listing.notices_of(session, session_ids=[shared.id]))[shared.id])
    shown.summary_delivery = await summary.summary_delivery(session, shared=shared)
    return shown


@router.get("", response_model=SessionsPublic)
async def list_sessions(
    community_id: str,
    session: SessionDep,
    caller: MemberOf,
    status_: Annotated[Literal["scheduled", "live", "ended", "cancelled"] | None, Query(alias="status")] = None,
    starts_from: Annotated[AwareDatetime | None, Query(description="Starting at or after this time.")] = None,
    starts_before: Annotated[AwareDatetime | None, Query(description="Starting before this time.")] = None,
    order: Annotated[Literal["asc", "desc"], Query(description="By start time; asc: soonest first.")] = "asc",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SessionsPublic:
    """The community's sessions with their notices, by start time, a page at a time (members, as one session
    is); filter by status and a window on the start time."""
    await get_community(session, community_id=community_id)
    rows, count = await listing.list_sessions(
        session,
        community_id=community_id,
        status=status_,
        starts_from=starts_from,
        starts_before=starts_before,
        newest_first=order == "desc",
        offset=offset,
        limit=limit,
    )
    notices = await listing.notices_of(session, session_ids=[s.id for s in rows])
    return SessionsPublic(data=[_public(s, notices[s.id]) for s in rows], count=count)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionPublic)
async def create_session(
    community_id: str, body: SessionCreate, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SessionPublic:
    """Schedule a guest sharing session (owner/admin): previews at T-48h/T-1h/T-5min, live relay in its window."""
    shared = await service.create_session(
        session, ctx=ctx, community_id=community_id, actor=caller.actor, data=body, now=ctx.clock.now()
    )
    return await _shown(session, shared)


@router.get("/{session_id}", response_model=SessionPublic)
async def get_session(community_id: str, session_id: str, session: SessionDep, caller: MemberOf) -> SessionPublic:
    """A session, its status, its notices and (after the end) the summary draft and its delivery to the groups
    (members)."""
    return await _shown(session, await service.get_session(session, session_id=session_id, community_id=community_id))


@router.get("/{session_id}/questions", response_model=list[QuestionPublic])
async def questions(community_id: str, session_id: str, session: SessionDep, caller: MemberOf) -> list[QuestionPublic]:
    """Questions collected for the Q&A part, in the order they were asked (members)."""
    await service.get_session(session, session_id=session_id, community_id=community_id)
    rows = await service.questions_of(session, session_id=session_id)
    return [QuestionPublic(**q.model_dump(include=set(QuestionPublic.model_fields))) for q in rows]


@router.post("/{session_id}/cancel", response_model=SessionPublic)
async def cancel_session(
    community_id: str, session_id: str, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> SessionPublic:
    """Cancel a session not started yet, with its previews (owner/admin)."""
    shared = await service.get_session(session, session_id=session_id, community_id=community_id)
    await service.cancel(session, ctx=ctx, shared=shared, actor=caller.actor, now=ctx.clock.now())
    return await _shown(session, shared)


@router.post("/{session_id}/summary/approve", status_code=status.HTTP_201_CREATED, response_model=PostPublic)
async def approve_summary(
    community_id: str, session_id: str, body: SummaryApprove, session: SessionDep, ctx: ContextDep, caller: MemberOf
) -> PostPublic:
    """The host (a member of the community) or the owner/an admin approves the summary: it is published as a
    post (沉淀), authored by the guest, and posted to the source and target groups (in numbered parts within
    each platform's message limit; see the session's `summary_delivery`). Approving again is refused (409)
    and sends nothing."""
    shared = await service.get_session(session, session_id=session_id, community_id=community_id)
    await service.require_host_or_staff(session, shared=shared, actor=caller.actor, doing="approve the summary")
    await summary.lock_session(session, shared=shared)  # two approvals at once: one post, one series of messages
    if shared.status != "ended":
        raise InvalidState(f"the summary is approved after the session ends (it is {shared.status})")
    if shared.summary_post_id is not None:
        raise InvalidState("the summary is already published")
    now = ctx.clock.now()
    post = Post(
        community_id=community_id,
        kind="summary",
        author_id=shared.guest_id,
        title=body.title or f"{shared.topic}（分享总结）",
        body_md=body.body_md or shared.summary_draft,
        tags=body.tags,
        level=body.level,
        required_tier=body.required_tier,
        session_id=shared.id,
        created_at=now,
        updated_at=now,
    )
    session.add(post)
    await session.flush()
    await posts.publish(session, ctx=ctx, post=post, now=now, guest_id=shared.guest_id)
    shared.summary_post_id = post.id
    # Posted to the source and target groups in the same transaction: split within each platform's limit.
    await summary.send_summary(session, ctx=ctx, shared=shared, post=post, now=now)
    return PostPublic(**post.model_dump(include=set(PostPublic.model_fields)))
