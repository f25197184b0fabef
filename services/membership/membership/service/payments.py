"""Payments, exactly once per payment id, whatever the order of success and refund events.

- The `payment` row is keyed by the provider's payment id: a second success (another event id for the same
  payment) finds it and does nothing. A refund arriving first creates the row as `awaiting_success` and
  waits; the success then applies it at once (a fully refunded payment never grants anything).
- A payment that cannot be applied (blacklisted payer, application not approved, wrong amount…) is still
  money received: it goes to the `suspense` account and a `refund.requested` command is emitted.
- The membership's end is replayed from its granted payments, so a refund of any one of them removes
  exactly the time it bought.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import permissions
from membership.context import MembershipContext
from membership.errors import PermissionDenied, RefundNotPossible, RefundWindowClosed, ResourceNotFound
from membership.models import Community, Membership, Payment, Plan, Refund, RefundRequest
from membership.service import ledger
from membership.service.access import find_membership
from membership.service.events import emit_member
from membership.service.expiry import end_paid_tier
from membership.service.groups import remove_from_groups
from membership.service.joining import membership_end, valid_referrer
from membership.service.lifecycle import admit, is_blacklisted
from membership.service.terms import format_local
from qunzhu_common.events.contracts.membership import RefundRequested
from qunzhu_common.events.contracts.payments import PaymentRefunded, PaymentSucceeded

log = logging.getLogger(__name__)

RENEWABLE = frozenset({"pending_ritual", "active", "expired"})


class Rejection(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def on_succeeded(session: AsyncSession, ctx: MembershipContext, *, community_id: str,
                       data: PaymentSucceeded) -> Payment:
    payment = await session.get(Payment, data.payment_id, with_for_update=True)
    if payment is not None and payment.outcome != "awaiting_success":
        log.info("payment %s already applied (%s); duplicate success ignored", data.payment_id, payment.outcome)
        return payment
    if payment is None:
        payment = Payment(payment_id=data.payment_id, community_id=community_id, provider=data.provider,
                          outcome="awaiting_success", recorded_at=ctx.now())
        session.add(payment)
    payment.community_id = community_id
    payment.provider, payment.payer_id, payment.plan_id = data.provider, data.payer_id, data.plan_id
    payment.amount_fen, payment.currency, payment.paid_at = data.amount_fen, data.currency, data.paid_at
    pending = list((await session.execute(
        select(Refund).where(Refund.payment_id == data.payment_id, Refund.applied.is_(False))
        .order_by(Refund.refunded_at, Refund.refund_id)
    )).scalars().all())
    fully_refunded_already = bool(pending) and sum(r.amount_fen for r in pending) >= data.amount_fen
    community = await session.get(Community, community_id)
    plan = await session.get(Plan, data.plan_id)
    try:
        member, kind = await _check(session, community=community, plan=plan, data=data)
    except Rejection as rejection:
        await _reject(session, ctx, payment=payment, code=rejection.code, reason=rejection.reason,
                      refund_pending=bool(pending))
    else:
        assert community is not None and plan is not None
        await _grant(session, ctx, community=community, plan=plan, payment=payment, member=member, kind=kind,
                     data=data, apply_to_membership=not fully_refunded_already)
    for refund in pending:
        await apply_refund(session, ctx, payment=payment, refund=refund)
    return payment


async def _check(session: AsyncSession, *, community: Community | None, plan: Plan | None,
                 data: PaymentSucceeded) -> tuple[Membership | None, str]:
    """Whether this payment may be applied; (membership, 'new' | 'renewal') or a Rejection."""
    if community is None or plan is None or plan.community_id != community.id:
        raise Rejection("unknown_plan", f"plan {data.plan_id} is not a plan of this community")
    if data.currency != plan.currency:
        raise Rejection("currency_mismatch", f"paid in {data.currency}, the plan costs {plan.currency}")
    if community.status == "dissolved":
        raise Rejection("community_dissolved", "the community was dissolved")
    member = await find_membership(session, community.id, data.payer_id, for_update=True)
    if (member is not None and member.status == "blacklisted") or await is_blacklisted(
        session, owner_id=community.owner_id, person_id=data.payer_id
    ):
        raise Rejection("blacklisted", "the payer is on the owner's blacklist")
    status = member.status if member is not None else "new"
    renewal = status in RENEWABLE and await _has_paid_before(session, community_id=community.id,
                                                             payer_id=data.payer_id)
    if status == "applied":
        raise Rejection("not_eligible", "the application has not been approved yet")
    if status in ("new", "removed", "rejected"):
        gates = {"application", "invite_only"} & set(community.entry_policies)
        if gates:
            raise Rejection("not_eligible", f"joining needs {' and '.join(sorted(gates))} first")
        if "referral_required" in community.entry_policies and not await valid_referrer(
            session, community_id=community.id, referrer_id=data.referrer_id, person_id=data.payer_id
        ):
            raise Rejection("not_eligible", "joining needs the referral of a member")
    expected = plan.renewal_price_fen if renewal and plan.renewal_price_fen is not None else plan.price_fen
    if data.amount_fen < expected:
        raise Rejection("amount_mismatch", f"paid {data.amount_fen} fen, the plan costs {expected} fen")
    return member, "renewal" if renewal else "new"


async def _has_paid_before(session: AsyncSession, *, community_id: str, payer_id: str) -> bool:
    found = await session.execute(select(Payment.payment_id).where(
        Payment.community_id == community_id, Payment.payer_id == payer_id,
        Payment.outcome.in_(("granted", "refunded")), Payment.kind.is_not(None),
    ).limit(1))
    return found.first() is not None


async def _reject(session: AsyncSession, ctx: MembershipContext, *, payment: Payment, code: str, reason: str,
                  refund_pending: bool) -> None:
    payment.outcome, payment.reject_code = "rejected", code
    await ledger.record_payment(session, ctx, payment=payment)  # all of it in suspense
    ctx.metrics.after_commit(session, lambda: ctx.metrics.payments_rejected.labels(code).inc())
    _count_revenue(session, ctx, payment)
    if not refund_pending:
        await request_refund(session, ctx, payment=payment, code=code, reason=reason)


async def _grant(session: AsyncSession, ctx: MembershipContext, *, community: Community, plan: Plan,
                 payment: Payment, member: Membership | None, kind: str, data: PaymentSucceeded,
                 apply_to_membership: bool) -> None:
    prior = member.status if member is not None else "new"
    referrer = None
    if apply_to_membership:
        if member is None:
            member = Membership(community_id=community.id, member_id=data.payer_id, status="new",
                                created_at=ctx.now(), changed_at=ctx.now())
            session.add(member)
        if member.referrer_id is None and prior in ("new", "removed", "rejected"):
            member.referrer_id = await valid_referrer(session, community_id=community.id,
                                                      referrer_id=data.referrer_id, person_id=data.payer_id)
        # Referral commission is paid on a member's first purchase, not on renewals.
        referrer = member.referrer_id if kind == "new" else None
    split = ledger.split_payment(data.amount_fen, platform_bps=ctx.settings.platform_fee_bps,
                                 referral_bps=community.referral_commission_bps, has_referrer=referrer is not None)
    payment.outcome, payment.kind, payment.referrer_id = "granted", kind, referrer if split.referrer else None
    payment.tier, payment.term_type, payment.duration_days = plan.tier, plan.term_type, plan.duration_days
    payment.refund_window_ends_at = data.paid_at + timedelta(hours=plan.refund_window_hours)
    payment.owner_fen, payment.platform_fee_fen = split.owner, split.platform
    payment.referral_commission_fen = split.referrer
    await session.flush()
    await ledger.record_payment(session, ctx, payment=payment)
    _count_revenue(session, ctx, payment)
    if member is None or not apply_to_membership:
        return  # its refund arrived first: the money is recorded, the membership is left alone
    member.tier, member.plan_id = plan.tier, plan.id
    member.expires_at = await membership_end(session, community=community, member=member)
    counter = ctx.metrics.paid_conversions if kind == "new" else ctx.metrics.renewals
    ctx.metrics.after_commit(session, counter.inc)
    if member.comp or prior in ("pending_ritual", "active"):  # staff, a trial, or a live membership
        await emit_member(session, ctx, "member.renewed", member, reason=f"payment {payment.payment_id}")
        return
    await admit(session, ctx, community=community, member=member, reason=f"payment {payment.payment_id}",
                prior_status=prior)


def _count_revenue(session: AsyncSession, ctx: MembershipContext, payment: Payment) -> None:
    amount, currency = payment.amount_fen or 0, payment.currency or "CNY"
    ctx.metrics.after_commit(session, lambda: ctx.metrics.revenue_fen.labels(currency).inc(amount))


async def on_refunded(session: AsyncSession, ctx: MembershipContext, *, community_id: str,
                      data: PaymentRefunded) -> None:
    if await session.get(Refund, data.refund_id) is not None:
        log.info("refund %s already recorded; duplicate ignored", data.refund_id)
        return
    payment = await session.get(Payment, data.payment_id, with_for_update=True)
    if payment is None:  # the refund overtook the success: keep it until the success arrives
        payment = Payment(payment_id=data.payment_id, community_id=community_id, provider=data.provider,
                          outcome="awaiting_success", recorded_at=ctx.now())
        session.add(payment)
    refund = Refund(refund_id=data.refund_id, payment_id=data.payment_id, community_id=payment.community_id,
                    amount_fen=data.amount_fen, reason=data.reason, refunded_at=data.refunded_at,
                    recorded_at=ctx.now())
    session.add(refund)
    await session.flush()
    if payment.outcome != "awaiting_success":
        await apply_refund(session, ctx, payment=payment, refund=refund)


async def apply_refund(session: AsyncSession, ctx: MembershipContext, *, payment: Payment, refund: Refund) -> None:
    """Book a refund against its payment; a refund that completes it revokes what the payment granted."""
    assert payment.amount_fen is not None
    before = payment.refunded_fen
    applied = min(refund.amount_fen, payment.amount_fen - before)
    if applied < refund.amount_fen:
        log.warning("refund %s of %d fen exceeds what is left of payment %s (%d fen); booking %d",
                    refund.refund_id, refund.amount_fen, payment.payment_id, payment.amount_fen - before, applied)
    refund.applied, refund.applied_fen = True, applied
    payment.refunded_fen = before + applied
    await session.flush()
    await ledger.record_refund(session, ctx, payment=payment, refund=refund, before=before, after=before + applied)
    currency = payment.currency or "CNY"
    ctx.metrics.after_commit(session, lambda: ctx.metrics.refunds_fen.labels(currency).inc(applied))
    if payment.refunded_fen < payment.amount_fen or payment.outcome == "refunded":
        return  # partly refunded: the membership stays
    granted = payment.outcome == "granted"
    payment.outcome = "refunded"
    await session.flush()
    if granted:
        await _revoke(session, ctx, payment=payment, refund=refund)


async def _revoke(session: AsyncSession, ctx: MembershipContext, *, payment: Payment, refund: Refund) -> None:
    community = await session.get(Community, payment.community_id)
    member = await find_membership(session, payment.community_id, payment.payer_id or "", for_update=True)
    if community is None or member is None:
        return
    member.expires_at = await membership_end(session, community=community, member=member)
    reason = f"refunded ({refund.reason})" if refund.reason else "refunded"
    if member.comp or member.status not in ("pending_ritual", "active"):
        return  # staff keep their role; an expired or removed membership has nothing left to take
    grace = timedelta(days=community.grace_period_days)
    if member.expires_at is not None and member.expires_at + grace > ctx.now():
        await emit_member(session, ctx, "member.renewed", member, reason=f"term shortened: {reason}")
        return
    if "paid" not in community.entry_policies:  # entry is free: only the paid tier goes
        member.expires_at = member.expires_at or ctx.now()
        await end_paid_tier(session, ctx, community=community, member=member)
        return
    member.status, member.status_reason = "removed", reason
    await remove_from_groups(session, ctx=ctx, member=member, paid_only=True, reason=reason,
                             cause=f"refund:{refund.refund_id}")
    await emit_member(session, ctx, "member.removed", member, reason=reason)
    ctx.metrics.after_commit(session, lambda: ctx.metrics.removals.labels("refunded").inc())


async def request_refund(session: AsyncSession, ctx: MembershipContext, *, payment: Payment, code: str,
                         reason: str) -> RefundRequest:
    """Stage the refund command (once per payment: a unique key on payment_id)."""
    existing = (await session.execute(
        select(RefundRequest).where(RefundRequest.payment_id == payment.payment_id)
    )).scalar_one_or_none()
    if existing is not None:
        return existing
    assert payment.amount_fen is not None and payment.payer_id is not None
    request = RefundRequest(payment_id=payment.payment_id, community_id=payment.community_id,
                            payer_id=payment.payer_id, amount_fen=payment.amount_fen - payment.refunded_fen,
                            reason_code=code, reason=reason, requested_at=ctx.now())
    session.add(request)
    await session.flush()
    await ctx.outbox.emit(
        session, type="refund.requested", community_id=payment.community_id,
        data=RefundRequested(request_id=request.id, community_id=payment.community_id,
                             payment_id=payment.payment_id, provider=payment.provider,  # type: ignore[arg-type]
                             payer_id=payment.payer_id, amount_fen=request.amount_fen,
                             currency=payment.currency or "CNY", reason_code=code,  # type: ignore[arg-type]
                             reason=reason, requested_at=request.requested_at),
    )
    return request


async def self_service_refund(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                              payer_id: str, payment_id: str, reason: str) -> tuple[RefundRequest, bool]:
    """A member asks for their money back inside the plan's refund window (default 72 h after paying)."""
    payment = await session.get(Payment, payment_id, with_for_update=True)
    if payment is None or payment.community_id != community.id:
        raise ResourceNotFound(f"payment {payment_id} not found in this community")
    if payment.payer_id != payer_id:
        raise PermissionDenied("only the payer may ask for a self-service refund", reason="not_payer")
    existing = (await session.execute(
        select(RefundRequest).where(RefundRequest.payment_id == payment_id)
    )).scalar_one_or_none()
    if existing is not None:
        return existing, False
    if payment.outcome != "granted" or (payment.amount_fen or 0) <= payment.refunded_fen:
        raise RefundNotPossible(f"payment {payment_id} is {payment.outcome}; nothing to refund",
                                reason="not_refundable")
    assert payment.refund_window_ends_at is not None
    if ctx.now() > payment.refund_window_ends_at:
        hours = round((payment.refund_window_ends_at - payment.paid_at).total_seconds() / 3600)  # type: ignore[operator]
        raise RefundWindowClosed(
            f"the {hours} h self-service refund window ended at "
            f"{format_local(payment.refund_window_ends_at, community.timezone)} ({community.timezone}); "
            "ask the owner instead",
            window_ends_at=payment.refund_window_ends_at.isoformat(), reason="window_closed",
        )
    return await request_refund(session, ctx, payment=payment, code="self_service", reason=reason), True


async def list_payments(session: AsyncSession, *, community_id: str, payer_id: str | None, offset: int,
                        limit: int) -> tuple[list[Payment], int]:
    from sqlalchemy import func

    where = [Payment.community_id == community_id]
    if payer_id is not None:
        where.append(Payment.payer_id == payer_id)
    rows = (await session.execute(
        select(Payment).where(*where).order_by(Payment.recorded_at.desc(), Payment.payment_id)
        .offset(offset).limit(limit)
    )).scalars().all()
    count = await session.scalar(select(func.count()).select_from(Payment).where(*where))
    return list(rows), int(count or 0)


_ = permissions
