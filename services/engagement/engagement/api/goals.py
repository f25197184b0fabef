"""Community goals with progress."""

from __future__ import annotations

from fastapi import APIRouter, status

from engagement.api.deps import MemberOf, StaffOf
from engagement.leaderboard import goals
from engagement.leaderboard.service import community
from engagement.models import GoalCreate, GoalPublic
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/goals", tags=["goals"])


@router.post("", response_model=GoalPublic, status_code=status.HTTP_201_CREATED)
async def create_goal(community_id: str, caller: StaffOf, body: GoalCreate, session: SessionDep) -> GoalPublic:
    """Set a community goal on points, check-ins, effective activities or active members."""
    c = await community(session, community_id)
    goal = await goals.create_goal(session, community_id=community_id, data=body)
    return goals.public(goal, await goals.goal_value(session, goal=goal, timezone=c.timezone))


@router.get("", response_model=list[GoalPublic])
async def list_goals(community_id: str, caller: MemberOf, session: SessionDep) -> list[GoalPublic]:
    """Every goal of the community with its progress ("46万 of 50万")."""
    c = await community(session, community_id)
    return await goals.list_goals(session, community_id=community_id, timezone=c.timezone)


@router.get("/{goal_id}", response_model=GoalPublic)
async def get_goal(community_id: str, goal_id: str, caller: MemberOf, session: SessionDep) -> GoalPublic:
    """One goal with its progress."""
    c = await community(session, community_id)
    return await goals.get_goal(session, community_id=community_id, goal_id=goal_id, timezone=c.timezone)

