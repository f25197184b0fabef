"""Surveys (问卷): choice, multiple choice, scale and text questions; one response per member; CSV export.

A member may resubmit before the deadline (the answers are replaced, the points are not given again).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import (
    InvalidActivity,
    check_window,
    completed,
    get_community,
    local_text,
    participated,
    post,
    require_aware,
    require_member,
)
from engagement.activities.schemas import SurveyCreate
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.errors import ThingNotFound
from engagement.models import Survey, SurveyResponse
from qunzhu_common.timeutil import utcnow

TEXT_MAX = 2000
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): it is quoted with '.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def create(session: AsyncSession, ctx: EngagementContext, *, community_id: str, data: SurveyCreate
                 ) -> Survey:
    community = await get_community(session, community_id)
    require_aware(data.closes_at, "closes_at")
    now = utcnow()
    if data.closes_at is not None and data.closes_at <= now:
        raise InvalidActivity(f"closes_at {data.closes_at.isoformat()} is in the past")
    survey = Survey(**data.model_dump(exclude={"questions"}), questions=[q.model_dump() for q in data.questions],
                    community_id=community_id, created_at=now)
    session.add(survey)
    await session.flush()
    deadline = f"，{local_text(survey.closes_at, community)} 截止" if survey.closes_at else ""
    await post(session, ctx, community_id=community_id, group_id=survey.group_id, action_id=f"survey:{survey.id}",
               text=f"📝 问卷「{survey.title}」共 {len(survey.questions)} 题{deadline}，请大家填写。")
    return survey


async def get(session: AsyncSession, *, community_id: str, survey_id: str) -> Survey:
    survey = await session.get(Survey, survey_id)
    if survey is None or survey.community_id != community_id:
        raise ThingNotFound(f"survey {survey_id} does not exist in community {community_id}")
    return survey


def _check_answer(n: int, question: dict[str, Any], answer: Any) -> Any:
    kind, options = question["kind"], question.get("options") or []
    where = f"question {n} ({question['text'][:40]})"
    if answer is None or answer == "" or answer == []:
        if question.get("required", True):
            raise InvalidActivity(f"{where} is required")
        return None
    if kind == "choice":
        if not isinstance(answer, int) or isinstance(answer, bool) or not 1 <= answer <= len(options):
            raise InvalidActivity(f"{where}: answer with an option number 1–{len(options)}")
        return answer
    if kind == "multi_choice":
        if (not isinstance(answer, list) or any(not isinstance(a, int) or isinstance(a, bool) for a in answer)
                or len(set(answer)) != len(answer) or any(not 1 <= a <= len(options) for a in answer)):
            raise InvalidActivity(f"{where}: answer with distinct option numbers 1–{len(options)}")
        return sorted(answer)
    if kind == "scale":
        low, high = question.get("scale_min", 1), question.get("scale_max", 5)
        if not isinstance(answer, int) or isinstance(answer, bool) or not low <= answer <= high:
            raise InvalidActivity(f"{where}: answer with a whole number {low}–{high}")
        return answer
    if not isinstance(answer, str) or len(answer) > TEXT_MAX:
        raise InvalidActivity(f"{where}: answer with text of at most {TEXT_MAX} characters")
    return answer.strip()


def check_answers(survey: Survey, answers: list[Any]) -> list[Any]:
    if len(answers) != len(survey.questions):
        raise InvalidActivity(f"the survey has {len(survey.questions)} questions, got {len(answers)} answers")
    return [_check_answer(i, q, a) for i, (q, a) in enumerate(zip(survey.questions, answers, strict=True), start=1)]


async def respond(
    session: AsyncSession, ctx: EngagementContext, *, survey: Survey, person_id: str, answers: list[Any],
    at: datetime,
) -> tuple[SurveyResponse, bool]:
    """(response, True) for a first response; a later one replaces the answers (False)."""
    checked = check_answers(survey, answers)
    check_window(what=f"survey {survey.title!r}", at=at, opens_at=None, closes_at=survey.closes_at)
    await require_member(session, survey.community_id, person_id)
    inserted = await insert_ignore(session, SurveyResponse, {
        "survey_id": survey.id, "person_id": person_id, "answers": checked, "submitted_at": at, "updated_at": at})
    row = await session.get(SurveyResponse, (survey.id, person_id), populate_existing=True)
    assert row is not None
    if not inserted:
        if list(row.answers) != checked:
            row.answers, row.updated_at = checked, at
            await session.flush()
        return row, False
    await participated(session, ctx, community_id=survey.community_id, activity="survey", activity_id=survey.id,
                       person_id=person_id, action="responded", at=at, group_id=survey.group_id,
                       title=survey.title)
    completed(session, ctx, "survey")
    return row, True


async def count(session: AsyncSession, *, survey_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(SurveyResponse)
                                    .where(SurveyResponse.survey_id == survey_id)) or 0)


def _cell(question: dict[str, Any], answer: Any) -> str:
    if answer is None:
        return ""
    options = question.get("options") or []
    if question["kind"] == "choice":
        return options[answer - 1]
    if question["kind"] == "multi_choice":
        return "; ".join(options[a - 1] for a in answer)
    text = str(answer)
    return "'" + text if text.startswith(_FORMULA_START) else text


async def export_csv(session: AsyncSession, *, survey: Survey) -> str:
    """One row per response: person, times (UTC ISO 8601), then one column per question.

    Starts with a UTF-8 byte-order mark so spreadsheet programs read the Chinese text correctly.
    """
    rows = (await session.execute(select(SurveyResponse).where(SurveyResponse.survey_id == survey.id)
                                  .order_by(SurveyResponse.submitted_at, SurveyResponse.person_id))).scalars().all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["person_id", "submitted_at", "updated_at",
                     *(f"Q{i} {q['text']}" for i, q in enumerate(survey.questions, start=1))])
    for row in rows:
        writer.writerow([row.person_id, row.submitted_at.isoformat(), row.updated_at.isoformat(),
                         *(_cell(q, a) for q, a in zip(survey.questions, row.answers, strict=True))])
    return "\ufeff" + out.getvalue()
