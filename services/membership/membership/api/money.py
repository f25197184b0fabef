"""Payments, self-service refunds and the revenue/commission ledger (fen)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from membership.deps import ActorDep, CtxDep, PageDep, PersonDep, SessionDep
from membership.models import LedgerEntry
from membership.models.payment import (
    LedgerEntryPublic,
    LedgerPage,
    PaymentPublic,
    PaymentsPage,
    RefundRequestCreate,
    RefundRequestPublic,
)
from membership.service import ledger, payments
from membership.service.access import authorize, load_community

router = APIRouter(tags=["payments"])


@router.post("/communities/{community_id}/refund-requests", response_model=RefundRequestPublic,
             responses={200: {"description": "Already requested"}, 201: {"description": "Requested"}})
async def request_refund(community_id: str, body: RefundRequestCreate, session: SessionDep, ctx: CtxDep,
                         actor: PersonDep, response: Response) -> RefundRequestPublic:
    """Self-service refund of one's own payment inside the plan's window (default 72 h): emits the
    `refund.requested` command; membership is revoked when `payment.refunded` arrives. After the window:
    409 `refund-window-closed` saying when it ended. `X-Actor-Id`: the payer."""
    community = await load_community(session, community_id)
    request, created = await payments.self_service_refund(session, ctx, community=community, payer_id=actor.id,
                                                          payment_id=body.payment_id, reason=body.reason)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return RefundRequestPublic.model_validate(request, from_attributes=True)


@router.get("/communities/{community_id}/payments", response_model=PaymentsPage)
async def list_payments(community_id: str, session: SessionDep, actor: ActorDep, page: PageDep) -> PaymentsPage:
    """Every payment of the community (`ledger.view`: the owner). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="ledger.view")
    rows, count = await payments.list_payments(session, community_id=community.id, payer_id=None,
                                               offset=page.offset, limit=page.limit)
    return PaymentsPage(data=[PaymentPublic.model_validate(p, from_attributes=True) for p in rows], count=count)


@router.get("/communities/{community_id}/members/{member_id}/payments", response_model=PaymentsPage)
async def member_payments(community_id: str, member_id: str, session: SessionDep, actor: ActorDep,
                          page: PageDep) -> PaymentsPage:
    """One person's payments in this community (themself, or the owner). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    if actor.id != member_id:
        await authorize(session, community=community, actor=actor, action="ledger.view")
    rows, count = await payments.list_payments(session, community_id=community.id, payer_id=member_id,
                                               offset=page.offset, limit=page.limit)
    return PaymentsPage(data=[PaymentPublic.model_validate(p, from_attributes=True) for p in rows], count=count)


@router.get("/communities/{community_id}/ledger", response_model=LedgerPage)
async def get_ledger(community_id: str, session: SessionDep, actor: ActorDep, page: PageDep) -> LedgerPage:
    """The ledger: per currency, captured − refunded = owner + platform fee + referral commission + suspense
    (`reconciled` says it holds), and the entries, newest first (`ledger.view`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="ledger.view")
    from sqlalchemy import func

    where = LedgerEntry.community_id == community.id
    entries = (await session.execute(select(LedgerEntry).where(where).order_by(LedgerEntry.id.desc())
                                     .offset(page.offset).limit(page.limit))).scalars().all()
    count = await session.scalar(select(func.count()).select_from(LedgerEntry).where(where))
    return LedgerPage(summary=await ledger.summary(session, community_id=community.id),
                      entries=[LedgerEntryPublic.model_validate(e, from_attributes=True) for e in entries],
                      count=int(count or 0))
