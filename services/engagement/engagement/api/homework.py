"""Homework (作业): assignments, submissions, grades 1–5, scholarships for the top 3."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from engagement.api.deps import ContextDep, GuestOf, MemberOf, StaffOf
from engagement.homework import service
from engagement.leaderboard.service import community
from engagement.models import (
    Assignment,
    AssignmentCreate,
    AssignmentPublic,
    GradeCreate,
    Submission,
    SubmissionCreate,
    SubmissionPublic,
)
from qunzhu_common.actor import require_self_unless_staff
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}/assignments", tags=["homework"])


@router.post("", response_model=AssignmentPublic, status_code=status.HTTP_201_CREATED)
async def create_assignment(community_id: str, caller: StaffOf, body: AssignmentCreate, session: SessionDep
                            ) -> Assignment:
    """Set homework; members submit with `作业 <code> …` in chat or through the API."""
    await community(session, community_id)
    return await service.create_assignment(session, community_id=community_id, data=body)


@router.get("", response_model=list[AssignmentPublic])
async def list_assignments(community_id: str, caller: MemberOf, session: SessionDep) -> list[Assignment]:
    """Assignments, newest first."""
    rows = await session.execute(
        select(Assignment).where(Assignment.community_id == community_id).order_by(Assignment.created_at.desc())
    )
    return list(rows.scalars())


@router.get("/{assignment_id}", response_model=AssignmentPublic)
async def get_assignment(community_id: str, assignment_id: str, caller: MemberOf, session: SessionDep) -> Assignment:
    """One assignment."""
    return await service.get_assignment(session, community_id=community_id, assignment_id=assignment_id)


@router.post("/{assignment_id}/submissions", response_model=SubmissionPublic, status_code=status.HTTP_201_CREATED)
async def submit(
    community_id: str, assignment_id: str, caller: MemberOf, body: SubmissionCreate, session: SessionDep,
    ctx: ContextDep,
) -> Submission:
    """Submit homework through the API (the same as `作业` in chat)."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    assignment = await service.get_assignment(session, community_id=community_id, assignment_id=assignment_id)
    return await service.submit(session, ctx, assignment=assignment, person_id=body.person_id, content=body.content,
                                at=utcnow(), source="api")


@router.get("/{assignment_id}/submissions", response_model=list[SubmissionPublic])
async def list_submissions(community_id: str, assignment_id: str, caller: GuestOf, session: SessionDep
                           ) -> list[Submission]:
    """Submissions, best graded first, then in the order they came (owners, admins and guests)."""
    await service.get_assignment(session, community_id=community_id, assignment_id=assignment_id)
    rows = await session.execute(
        select(Submission).where(Submission.assignment_id == assignment_id)
        .order_by(Submission.grade.desc().nulls_last(), Submission.submitted_at)
    )
    return list(rows.scalars())


@router.post("/{assignment_id}/submissions/{submission_id}/grade", response_model=SubmissionPublic)
async def grade(
    community_id: str, assignment_id: str, submission_id: str, caller: GuestOf, body: GradeCreate,
    session: SessionDep, ctx: ContextDep,
) -> Submission:
    """Grade a submission 1–5 (owners, admins and guests only); the grade bonus goes to the ledger."""
    require_self_unless_staff(caller, body.graded_by, "graded_by")
    assignment = await service.get_assignment(session, community_id=community_id, assignment_id=assignment_id)
    return await service.grade(session, ctx, assignment=assignment, submission_id=submission_id, grade=body.grade,
                               graded_by=body.graded_by, feedback=body.feedback)


@router.post("/{assignment_id}/scholarships", response_model=list[SubmissionPublic])
async def award_scholarships(community_id: str, assignment_id: str, caller: StaffOf, session: SessionDep,
                             ctx: ContextDep) -> list[Submission]:
    """Flag the top 3 graded submissions for a scholarship (奖学金) and announce them, once."""
    assignment = await service.get_assignment(session, community_id=community_id, assignment_id=assignment_id)
    return await service.award_scholarships(session, ctx, assignment=assignment)
