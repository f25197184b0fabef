"""Checkout and orders on the public API (the payer, or the community's staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.deps import CurrentPrincipal, PlatformOperator, client_address, rate_limit
from gateway.models import PaymentOrder, ReconciliationDifference
from gateway.orders import review, service
from gateway.orders.runtime import OrdersRuntime, orders_of
from gateway.upstream import Upstreams, upstreams_of
from qunzhu_common.deps import SessionDep
from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.service import runtime_of

router = APIRouter(prefix="/api/v1", tags=["payments"], dependencies=[Depends(rate_limit)])

OrderId = Annotated[str, Path(min_length=1, max_length=200)]
CommunityId = Annotated[str, Path(min_length=1, max_length=100)]


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(min_length=1, max_length=100)
    provider: Literal["stripe", "wechatpay"]
    channel: Literal["checkout", "jsapi", "native", "h5"] = Field(
        description="stripe: checkout; wechatpay: jsapi (needs payer_openid), native (QR code) or h5.")
    payer_openid: str | None = Field(default=None, min_length=1, max_length=128,
                                     description="WeChat Pay JSAPI: the payer's openid for the merchant's appid.")
    referrer: PersonId | None = Field(default=None, description="The member who referred the payer, if any.")


class OrderPublic(BaseModel):
    model_config = ConfigDict(extra="allow")  # plus the channel's answer: checkout_url, code_url, h5_url, jsapi

    order_id: str
    community_id: str
    plan_id: str
    payer_id: str
    provider: str
    channel: str
    kind: str = Field(description="new or renewal: which price of the plan")
    status: str = Field(description="created, paid, expired, closed, review, failed; refunded (after a review)")
    amount_fen: int
    currency: str
    expires_at: str
    paid_at: str | None = None
    # What the front end does next, by channel (only its own field is set):
    checkout_url: str | None = Field(default=None, description="Stripe Checkout: send the browser here.")
    session_id: str | None = Field(default=None, description="Stripe Checkout: the session's id.")
    code_url: str | None = Field(default=None, description="WeChat Pay Native: show it as a QR code.")
    h5_url: str | None = Field(default=None, description="WeChat Pay H5: open it in the mobile browser.")
    jsapi: dict[str, str] | None = Field(default=None, description=(
        "WeChat Pay JSAPI: the `wx.requestPayment` parameters (appId, timeStamp, nonceStr, package, signType, "
        "paySign)."))


@router.post("/communities/{community_id}/checkout", status_code=201, response_model=OrderPublic,
             summary="Start paying for a plan",
             responses={409: {"description": "Not a paying state, or the Idempotency-Key was used for another "
                                             "request"},
                        502: {"description": "The payment provider refused or could not be reached"}})
async def checkout(
    community_id: CommunityId, body: CheckoutRequest, request: Request, principal: CurrentPrincipal,
    upstreams: Annotated[Upstreams, Depends(upstreams_of)], orders: Annotated[OrdersRuntime, Depends(orders_of)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Create an order for the signed-in person (the member-to-be: a paid join in `pending_payment`, or a
    renewal) and the provider's order, and answer what the front end needs: Stripe's `checkout_url`.
    The amount is the plan's price in fen (its renewal price for a renewal). A retried call with the same
    `Idempotency-Key` answers the same order. Poll `GET …/orders/{order_id}` for its status."""
    state = request.app.state.gateway
    order = await service.checkout(
        runtime_of(request).session_maker, upstreams=upstreams, deps=orders.deps, principal=principal,
        community_id=community_id, body=body.model_dump(), idempotency_key=idempotency_key,
        client_ip=client_address(request, state.settings.trusted_proxies),
    )
    return service.public_view(order)


@router.get("/communities/{community_id}/orders/{order_id}", response_model=OrderPublic, summary="An order")
async def get_order(community_id: CommunityId, order_id: OrderId, session: SessionDep,
                    principal: CurrentPrincipal) -> dict[str, Any]:
    """An order and its status (`paid` once the provider's notification arrived): its payer's, or for
    the community's admins and the owner."""
    return service.public_view(await service.get_order(session, principal, community_id=community_id,
                                                       order_id=order_id))


ops = APIRouter(prefix="/api/v1/ops", tags=["operations"])
ProviderQuery = Annotated[Literal["stripe", "wechatpay"] | None, Query()]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=200)]


async def _page(session: AsyncSession, model: Any, where: list[Any], newest: Any, offset: int, limit: int
                ) -> tuple[list[Any], int]:
    """One page of an ops list, newest first, and how many there are in all."""
    rows = (await session.execute(select(model).where(*where).order_by(newest.desc()).offset(offset).limit(limit)
                                  )).scalars().all()
    return list(rows), int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class ReviewPublic(BaseModel):
    order_id: str
    community_id: str
    payer_id: str
    plan_id: str
    provider: str
    payment_id: str | None
    amount_fen: int
    currency: str
    paid_amount_fen: int | None
    paid_currency: str | None
    reason: str
    updated_at: datetime


class ReviewPage(BaseModel):
    data: list[ReviewPublic]
    count: int


@ops.get("/payment-reviews", response_model=ReviewPage, summary="Payments held for review")
async def payment_reviews(
    session: SessionDep, _operator: PlatformOperator, provider: ProviderQuery = None, offset: Offset = 0,
    limit: Limit = 50,
) -> ReviewPage:
    """Orders whose payment arrived with another amount or currency than the order's: nothing was granted;
    someone decides (`POST …/payment-reviews/{order_id}/decision`: grant or refund). Newest first (platform
    operators)."""
    where = [PaymentOrder.status == "review"] + ([PaymentOrder.provider == provider] if provider else [])
    rows, count = await _page(session, PaymentOrder, where, PaymentOrder.updated_at, offset, limit)
    return ReviewPage(data=[ReviewPublic(
        order_id=o.id, community_id=o.community_id, payer_id=o.payer_id, plan_id=o.plan_id, provider=o.provider,
        payment_id=o.provider_payment_id, amount_fen=o.amount_fen, currency=o.currency,
        paid_amount_fen=o.paid_amount_fen, paid_currency=o.paid_currency, reason=o.review_reason,
        updated_at=o.updated_at) for o in rows], count=count)


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["grant", "refund"] = Field(description=(
        "grant: the payment goes out as paid with the amount actually paid; refund: the refund worker refunds "
        "it at the provider."))
    note: str = Field(default="", max_length=300, description="Why, for the record (kept with the order).")


class DecisionAnswer(BaseModel):
    order_id: str
    status: str = Field(description="paid (granted) or refunded")
    decision: str
    events: int = Field(description="Events sent: the payment and the refunds held against it (grant).")
    refund_request_id: str | None = Field(default=None, description="refund: the refund request the worker runs.")
    refund_fen: int = Field(default=0, description="refund: what is refunded (paid less refunds already made).")


@ops.post("/payment-reviews/{order_id}/decision", response_model=DecisionAnswer,
          summary="Settle a payment held for review",
          responses={404: {"description": "No such order"},
                     409: {"description": "The order is not held for review (decided already), or its payment "
                                          "cannot be settled here"}})
async def decide_payment_review(
    order_id: OrderId, body: ReviewDecision, session: SessionDep, operator: PlatformOperator, request: Request,
    orders: Annotated[OrdersRuntime, Depends(orders_of)],
) -> DecisionAnswer:
    """Decide a payment held for review, once (platform operators): `grant` sends the payment as paid with
    the amount and currency actually paid (membership applies its rules to it) together with the refunds
    held against it, and the order becomes `paid`; `refund` has the refund worker refund what was paid (less
    refunds already made) at the provider, and the order becomes `refunded`. A second decision is a 409."""
    decided = await review.decide(session, outbox=runtime_of(request).outbox, deps=orders.deps, order_id=order_id,
                                  decision=body.decision, note=body.note, by=operator.recorded_as)
    return DecisionAnswer(order_id=decided.order.id, status=decided.order.status, decision=body.decision,
                          events=decided.events, refund_request_id=decided.refund_request_id,
                          refund_fen=decided.refund_fen)


class DifferencePublic(BaseModel):
    id: int
    provider: str
    kind: str
    reference: str
    detail: str
    window_start: datetime
    window_end: datetime
    found_at: datetime


class DifferencePage(BaseModel):
    data: list[DifferencePublic]
    count: int


@ops.get("/reconciliation", response_model=DifferencePage, summary="Differences with the payment providers")
async def reconciliation_differences(
    session: SessionDep, _operator: PlatformOperator, provider: ProviderQuery = None, offset: Offset = 0,
    limit: Limit = 50,
) -> DifferencePage:
    """What the daily reconciliation found between our orders, payments and refunds and the provider's
    records (a payment or refund only one side knows, or amounts that differ), newest first (platform
    operators)."""
    where = [ReconciliationDifference.provider == provider] if provider else []
    rows, count = await _page(session, ReconciliationDifference, where, ReconciliationDifference.id, offset, limit)
    return DifferencePage(data=[DifferencePublic.model_validate(r, from_attributes=True) for r in rows],
                          count=count)
