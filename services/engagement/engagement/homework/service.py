"""Homework: submissions from chat (`作业 W3 …`) or the API, grades by owners/admins/guests, scholarships.

A submission is an activity (homework_submitted points, once per assignment); a grade is another
activity of the submitter (the grade bonus), so both are in the ledger with their rule.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.errors import StateConflict, ThingNotFound
from engagement.models import (
    Activity,
    Assignment,
    AssignmentCreate,
    MemberCopy,
    Submission,
)
from engagement.scoring.engine import record_activity
from qunzhu_common.errors import Forbidden
from qunzhu_common.events.contracts.engagement import ScholarshipAwarded
from qunzhu_common.outbox import count_after_commit
from qunzhu_common.timeutil import utcnow

GRADERS = ("owner", "admin", "guest")
SCHOLARSHIPS = 3


def assignment_ref(assignment_id: str) -> str:
    return f"assignment:{assignment_id}"


async def create_assignment(session: AsyncSession, *, community_id: str, data: AssignmentCreate) -> Assignment:
    assignment = Assignment(**data.model_dump(), community_id=community_id, created_at=utcnow())
    session.add(assignment)
    await session.flush()
    return assignment


async def get_assignment(session: AsyncSession, *, community_id: str, assignment_id: str) -> Assignment:
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None or assignment.community_id != community_id:
        raise ThingNotFound(f"assignment {assignment_id} does not exist in community {community_id}")
    return assignment


async def resolve_assignment(
    session: AsyncSession, *, community_id: str, argument: str, at: datetime
) -> tuple[Assignment | None, str]:
    """Which assignment a chat `作业` is for: a leading code (`W3 …`), else the newest open one."""
    words = argument.strip().split(maxsplit=1)
    rows = (await session.execute(
        select(Assignment).where(Assignment.community_id == community_id, Assignment.created_at <= at)
        .order_by(Assignment.created_at.desc())
    )).scalars().all()
    if words:
        for assignment in rows:
            if assignment.code and assignment.code.lower() == words[0].lower():
                return assignment, words[1] if len(words) > 1 else ""
    for assignment in rows:
        if assignment.due_at is None or assignment.due_at >= at:
            return assignment, argument
    return None, argument


async def submit(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    assignment: Assignment,
    person_id: str,
    content: str,
    at: datetime,
    source: str,
    source_event_id: str | None = None,
    group_id: str = "",
    message_id: str | None = None,
) -> Submission:
    """Record a submission (a resubmission replaces the content, earns nothing more) and score it."""
    submission = (await session.execute(
        select(Submission).where(Submission.assignment_id == assignment.id, Submission.person_id == person_id)
    )).scalar_one_or_none()
    if submission is None:
        submission = Submission(assignment_id=assignment.id, community_id=assignment.community_id,
                                person_id=person_id, content=content, source=source, submitted_at=at)
        session.add(submission)
    elif submission.grade is None:
        submission.content = content
    await record_activity(session, ctx, activity=Activity(
        community_id=assignment.community_id, source_event_id=source_event_id or str(uuid.uuid4()),
        source_type="chat.command.issued" if source == "chat" else "api.homework.submitted",
        kind="homework", person_id=person_id, group_id=group_id, occurred_at=at, message_id=message_id,
        reply_to_message_id=assignment_ref(assignment.id), text=content[:20000], received_at=utcnow(),
        extra={"assignment_id": assignment.id},
    ))
    await session.flush()
    return submission


async def grade(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    assignment: Assignment,
    submission_id: str,
    grade: int,
    graded_by: str,
    feedback: str,
) -> Submission:
    grader = await session.get(MemberCopy, (assignment.community_id, graded_by))
    if grader is None or grader.role not in GRADERS:
        raise Forbidden(f"{graded_by} is not an owner, admin or guest of the community")
    submission = await session.get(Submission, submission_id)
    if submission is None or submission.assignment_id != assignment.id:
        raise ThingNotFound(f"submission {submission_id} does not exist for assignment {assignment.id}")
    if submission.grade is not None:
        raise StateConflict(f"submission {submission_id} was already graded {submission.grade}")
    now = utcnow()
    submission.grade, submission.graded_by, submission.graded_at, submission.feedback = grade, graded_by, now, feedback
    await record_activity(session, ctx, activity=Activity(
        community_id=assignment.community_id, source_event_id=str(uuid.uuid4()), source_type="api.homework.graded",
        kind="homework_grade", person_id=submission.person_id, other_id=graded_by, occurred_at=now,
        reply_to_message_id=assignment_ref(assignment.id),
        extra={"assignment_id": assignment.id, "submission_id": submission.id, "grade": grade}, received_at=now,
    ))
    return submission


async def award_scholarships(
    session: AsyncSession, ctx: EngagementContext, *, assignment: Assignment
) -> list[Submission]:
    """Flag the top 3 graded submissions (grade, then who submitted first) and announce each, once."""
    if assignment.scholarships_awarded_at is not None:
        raise StateConflict(f"scholarships of {assignment.id} were already awarded")
    top = (await session.execute(
        select(Submission).where(Submission.assignment_id == assignment.id, Submission.grade.is_not(None))
        .order_by(Submission.grade.desc(), Submission.submitted_at, Submission.id).limit(SCHOLARSHIPS)
    )).scalars().all()
    now = utcnow()
    assignment.scholarships_awarded_at = now
    for rank, submission in enumerate(top, start=1):
        submission.scholarship_rank = rank
        if ctx.metrics is not None:
            count_after_commit(session, ctx.metrics.scholarships)
        await ctx.emit(session, type="scholarship.awarded", community_id=assignment.community_id,
                       data=ScholarshipAwarded(
                           community_id=assignment.community_id, assignment_id=assignment.id,
                           assignment_title=assignment.title, person_id=submission.person_id, rank=rank,
                           grade=submission.grade or 1, awarded_at=now,
                       ))
    return list(top)
