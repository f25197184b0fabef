"""Surveys (问卷): create, respond (one response per member, replaceable), export as CSV."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from engagement.activities import surveys as service
from engagement.activities.schemas import ResponseBody, ResponsePublic, SurveyCreate, SurveyPublic
from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.models import Survey, SurveyResponse
from qunzhu_common.actor import require_self_unless_staff
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}/surveys", tags=["activities"])


async def _public(session: SessionDep, survey: Survey) -> SurveyPublic:
    return SurveyPublic(**survey.model_dump(), responses=await service.count(session, survey_id=survey.id))


@router.post("", response_model=SurveyPublic, status_code=status.HTTP_201_CREATED)
async def create_survey(community_id: str, caller: StaffOf, body: SurveyCreate, session: SessionDep,
                        ctx: ContextDep) -> SurveyPublic:
    """Create a survey of choice, multiple-choice, scale and text questions."""
    return await _public(session, await service.create(session, ctx, community_id=community_id, data=body))


@router.get("", response_model=list[SurveyPublic])
async def list_surveys(community_id: str, caller: MemberOf, session: SessionDep) -> list[SurveyPublic]:
    """Surveys, newest first, with their response counts."""
    rows = await session.execute(select(Survey).where(Survey.community_id == community_id)
                                 .order_by(Survey.created_at.desc()))
    return [await _public(session, s) for s in rows.scalars()]


@router.get("/{survey_id}", response_model=SurveyPublic)
async def get_survey(community_id: str, survey_id: str, caller: MemberOf, session: SessionDep) -> SurveyPublic:
    """One survey with its questions."""
    return await _public(session, await service.get(session, community_id=community_id, survey_id=survey_id))


@router.post("/{survey_id}/responses", response_model=ResponsePublic, status_code=status.HTTP_201_CREATED)
async def respond(community_id: str, survey_id: str, caller: MemberOf, body: ResponseBody, session: SessionDep,
                  ctx: ContextDep, response: Response) -> SurveyResponse:
    """Answer (201); answering again before the deadline replaces the answers (200)."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    survey = await service.get(session, community_id=community_id, survey_id=survey_id)
    row, new = await service.respond(session, ctx, survey=survey, person_id=body.person_id, answers=body.answers,
                                     at=utcnow())
    if not new:
        response.status_code = status.HTTP_200_OK
    return row


@router.get("/{survey_id}/responses", response_model=list[ResponsePublic])
async def list_responses(community_id: str, survey_id: str, caller: StaffOf, session: SessionDep
                         ) -> list[SurveyResponse]:
    """Every response, in the order they came (owner/admin)."""
    survey = await service.get(session, community_id=community_id, survey_id=survey_id)
    rows = await session.execute(select(SurveyResponse).where(SurveyResponse.survey_id == survey.id)
                                 .order_by(SurveyResponse.submitted_at, SurveyResponse.person_id))
    return list(rows.scalars())


@router.get("/{survey_id}/export.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "One row per response."}})
async def export(community_id: str, survey_id: str, caller: StaffOf, session: SessionDep) -> Response:
    """The responses as CSV (UTF-8 with BOM; owner/admin): person, times, one column per question."""
    survey = await service.get(session, community_id=community_id, survey_id=survey_id)
    body = await service.export_csv(session, survey=survey)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="survey-{survey.id}.csv"'})
