"""Lotteries (抽奖): create with a committed seed, enter (chat keyword or API), draw once, verify."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from engagement.activities import lottery as service
from engagement.activities.schemas import (
    EntrantsPublic,
    EntryPublic,
    LotteryCreate,
    LotteryPublic,
    PersonBody,
)
from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.models import Lottery
from qunzhu_common.actor import require_self_unless_staff
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}/lotteries", tags=["activities"])


def public(lottery: Lottery) -> LotteryPublic:
    drawn = lottery.status == "drawn"
    return LotteryPublic(**lottery.model_dump(exclude={"seed", "community_id", "created_by"}),
                         seed=lottery.seed if drawn else None, algorithm=service.ALGORITHM)


@router.post("", response_model=LotteryPublic, status_code=status.HTTP_201_CREATED)
async def create_lottery(community_id: str, caller: StaffOf, body: LotteryCreate, session: SessionDep,
                         ctx: ContextDep) -> LotteryPublic:
    """Open a lottery; its seed commitment sha256(seed) is published now, the seed after the draw."""
    return public(await service.create(session, ctx, community_id=community_id, data=body))


@router.get("", response_model=list[LotteryPublic])
async def list_lotteries(community_id: str, caller: MemberOf, session: SessionDep) -> list[LotteryPublic]:
    """Lotteries, newest first."""
    rows = await session.execute(select(Lottery).where(Lottery.community_id == community_id)
                                 .order_by(Lottery.created_at.desc()))
    return [public(row) for row in rows.scalars()]


@router.get("/{lottery_id}", response_model=LotteryPublic)
async def get_lottery(community_id: str, lottery_id: str, caller: MemberOf, session: SessionDep) -> LotteryPublic:
    """One lottery: commitment, and after the draw the seed and the winners."""
    return public(await service.get(session, community_id=community_id, lottery_id=lottery_id))


@router.post("/{lottery_id}/entries", response_model=EntryPublic, status_code=status.HTTP_201_CREATED)
async def enter(community_id: str, lottery_id: str, caller: MemberOf, body: PersonBody, session: SessionDep,
                ctx: ContextDep, response: Response) -> EntryPublic:
    """Enter a member (201); entering again returns the first entry (200). Late or ineligible: 409/422 why."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    lottery = await service.get(session, community_id=community_id, lottery_id=lottery_id)
    entry, new = await service.enter(session, ctx, lottery=lottery, person_id=body.person_id, at=utcnow())
    if not new:
        response.status_code = status.HTTP_200_OK
    return EntryPublic(lottery_id=entry.lottery_id, person_id=entry.person_id, source=entry.source,
                       entered_at=entry.entered_at, new=new)


@router.get("/{lottery_id}/entrants", response_model=EntrantsPublic)
async def entrants(community_id: str, lottery_id: str, caller: MemberOf, session: SessionDep) -> EntrantsPublic:
    """The entrant ids the draw uses (sorted), to recompute the winners from the revealed seed."""
    lottery = await service.get(session, community_id=community_id, lottery_id=lottery_id)
    people = await service.entrants(session, lottery_id=lottery.id)
    return EntrantsPublic(lottery_id=lottery.id, entrants=people, entrants_sha256=service.entrants_digest(people))


@router.post("/{lottery_id}/draw", response_model=LotteryPublic)
async def draw(community_id: str, lottery_id: str, caller: StaffOf, session: SessionDep, ctx: ContextDep
               ) -> LotteryPublic:
    """Draw the winners after the entries close and reveal the seed; a second draw is a 409."""
    lottery = await service.get(session, community_id=community_id, lottery_id=lottery_id)
    return public(await service.draw(session, ctx, lottery=lottery))
