"""Sign-up chains (接龙): create, sign up (chat `接龙` or API), cancel, the list with its waitlist."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from engagement.activities import chains as service
from engagement.activities.schemas import ChainCreate, ChainPublic, PersonBody, SignupBody, SignupPublic
from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.models import SignupChain
from qunzhu_common.actor import require_self_unless_staff
from qunzhu_common.deps import SessionDep
from qunzhu_common.timeutil import utcnow

router = APIRouter(prefix="/communities/{community_id}/chains", tags=["activities"])


@router.post("", response_model=ChainPublic, status_code=status.HTTP_201_CREATED)
async def create_chain(community_id: str, caller: StaffOf, body: ChainCreate, session: SessionDep, ctx: ContextDep
                       ) -> ChainPublic:
    """Start a sign-up chain; the bot posts it in its group."""
    chain = await service.create(session, ctx, community_id=community_id, data=body)
    return await service.public(session, chain)


@router.get("", response_model=list[ChainPublic])
async def list_chains(community_id: str, caller: MemberOf, session: SessionDep) -> list[ChainPublic]:
    """Chains, newest first, with their lists."""
    rows = await session.execute(select(SignupChain).where(SignupChain.community_id == community_id)
                                 .order_by(SignupChain.created_at.desc()))
    return [await service.public(session, chain) for chain in rows.scalars()]


@router.get("/{chain_id}", response_model=ChainPublic)
async def get_chain(community_id: str, chain_id: str, caller: MemberOf, session: SessionDep) -> ChainPublic:
    """The list as it is: confirmed lines, then the waitlist, numbered in sign-up order."""
    return await service.public(session, await service.get(session, community_id=community_id, chain_id=chain_id))


@router.post("/{chain_id}/signups", response_model=SignupPublic, status_code=status.HTTP_201_CREATED)
async def sign_up(community_id: str, chain_id: str, caller: MemberOf, body: SignupBody, session: SessionDep,
                  ctx: ContextDep, response: Response) -> SignupPublic:
    """Sign up (201, confirmed or waitlisted); signing up again returns the same line (200)."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    chain = await service.get(session, community_id=community_id, chain_id=chain_id)
    outcome, position, state = await service.signup(session, ctx, chain=chain, person_id=body.person_id,
                                                    line=body.line, at=utcnow())
    if outcome == "already":
        response.status_code = status.HTTP_200_OK
    return SignupPublic(chain_id=chain_id, person_id=body.person_id, outcome=outcome,  # type: ignore[arg-type]
                        position=position, status=state)  # type: ignore[arg-type]


@router.post("/{chain_id}/cancellations", response_model=SignupPublic)
async def cancel(community_id: str, chain_id: str, caller: MemberOf, body: PersonBody, session: SessionDep,
                 ctx: ContextDep) -> SignupPublic:
    """Take a member off the list; the first waiting member moves up (and is told so)."""
    require_self_unless_staff(caller, body.person_id, "person_id")
    chain = await service.get(session, community_id=community_id, chain_id=chain_id)
    outcome, promoted = await service.cancel(session, ctx, chain=chain, person_id=body.person_id, at=utcnow())
    return SignupPublic(chain_id=chain_id, person_id=body.person_id, outcome=outcome,  # type: ignore[arg-type]
                        position=None, status="cancelled", promoted=promoted)


@router.post("/{chain_id}/close", response_model=ChainPublic)
async def close(community_id: str, chain_id: str, caller: StaffOf, session: SessionDep, ctx: ContextDep) -> ChainPublic:
    """Stop taking sign-ups; the list stays."""
    chain = await service.get(session, community_id=community_id, chain_id=chain_id)
    return await service.public(session, await service.close(session, ctx, chain=chain))
