"""Ops decisions on payments held for review (an amount or currency that differs from the order's).

`POST /api/v1/ops/payment-reviews/{order_id}/decision` (platform operators), exactly once per order: the
order leaves `review` under a conditional update, so a second decision (or two at once) is a 409.

- `grant`: the payment goes out as paid with the amount and currency actually paid (`payment.succeeded`
  from the order: community, payer, plan, referrer; membership then applies its own rules — it refuses and
  refunds an amount below the plan's price or another currency), the order becomes `paid`, and the refunds
  held against it go out with it.
- `refund`: a `refund_order` row for what was paid less what was already refunded (the refunds held
  against the order), run by the refund worker at the provider like any refund (request id
  `review-<order id>`: Stripe's Idempotency-Key, WeChat Pay's out_refund_no); the order becomes `refunded`
  and the held refunds are `settled`: membership never saw this payment, so no refund of it goes there,
  neither now nor when the provider confirms ours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import PaymentOrder, PaymentRef, ProviderRefund, RefundOrder
from gateway.orders import notify
from gateway.orders.channels import ChannelDeps
from gateway.webhooks.commands import Unnormalisable
from gateway.webhooks.ingest import stage
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.errors import Conflict, NotFound
from qunzhu_common.outbox import OutboxWriter
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)
Decision = Literal["grant", "refund"]
STATUS = {"grant": "paid", "refund": "refunded"}


@dataclass(frozen=True)
class Decided:
    order: PaymentOrder
    events: int
    refund_request_id: str | None = None
    refund_fen: int = 0


def refund_request_id(order_id: str) -> str:
    return f"review-{order_id}"  # ≤ 64 characters of [0-9a-z-]: a valid WeChat Pay out_refund_no


async def decide(session: AsyncSession, *, outbox: OutboxWriter, deps: ChannelDeps, order_id: str,
                 decision: Decision, note: str, by: str) -> Decided:
    order = await session.get(PaymentOrder, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status != "review":
        raise Conflict(f"order {order_id} is {order.status}, not held for review (decided already?)",
                       order_status=order.status)
    if not order.provider_payment_id or order.paid_amount_fen is None or not order.paid_currency:
        raise Conflict(f"the payment of order {order_id} is not known well enough to {decision} it here: "
                       "settle it at the provider by hand")
    held = list((await session.execute(select(ProviderRefund).where(
        ProviderRefund.provider == order.provider, ProviderRefund.status == "held",
        or_(ProviderRefund.order_id == order.id, ProviderRefund.payment_id == order.provider_payment_id),
    ))).scalars().all())
    # The claim: one decision per order, whatever runs at the same time (a second one finds no row in review).
    recorded = f"{order.review_reason}; {decision} by {by}" + (f": {note}" if note else "")
    claimed = await session.execute(update(PaymentOrder).where(
        PaymentOrder.id == order.id, PaymentOrder.status == "review",  # type: ignore[arg-type]
    ).values(status=STATUS[decision], review_reason=recorded[:500], updated_at=utcnow()))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"order {order_id} was decided meanwhile")
    await session.refresh(order)
    if decision == "grant":
        decided = await _grant(session, outbox, order)
    else:
        decided = await _refund(session, order, held, note=note)
    deps.count(order, "granted" if decision == "grant" else "refunded")
    log.info("payment review of order %s (%s %s): %s by %s", order.id, order.provider, order.provider_payment_id,
             decision, by)
    return decided


async def _grant(session: AsyncSession, outbox: OutboxWriter, order: PaymentOrder) -> Decided:
    payment_id = str(order.provider_payment_id)
    effects = notify.Effects(events=[("payment.succeeded", order.community_id, dict(
        payment_id=payment_id, provider=order.provider, payer_id=order.payer_id, plan_id=order.plan_id,
        amount_fen=order.paid_amount_fen, currency=order.paid_currency, referrer_id=order.referrer_id,
        paid_at=(order.paid_at or order.updated_at).isoformat()))])
    effects.add(await notify.release_held(session, order.provider, payment_id=payment_id,
                                          community_id=order.community_id, order_id=order.id))
    try:
        staged = [stage(outbox.registry, t, c, d) for t, c, d in effects.events]
    except Unnormalisable as exc:  # e.g. a currency no event may carry: nothing is written (the request rolls back)
        raise Conflict(f"the payment cannot be granted as paid ({exc}): settle it by hand") from None
    for event in staged:
        await outbox.emit(session, type=event.type, data=event.payload, community_id=event.community_id)
    if order.paid_at is None:
        order.paid_at = order.updated_at
    await insert_if_absent(session, PaymentRef.__table__, dict(  # type: ignore[attr-defined]
        payment_id=payment_id, provider=order.provider, community_id=order.community_id, payer_id=order.payer_id,
        plan_id=order.plan_id, amount_fen=order.paid_amount_fen))  # later refunds of it know its community
    await effects.apply(session)
    return Decided(order, events=len(staged))


async def _refund(session: AsyncSession, order: PaymentOrder, held: list[ProviderRefund], *, note: str) -> Decided:
    already = sum(r.amount_fen for r in held)
    rest = int(order.paid_amount_fen or 0) - already
    for row in held:  # money already back to the payer: settled here, nothing to tell membership
        row.status = "settled"
    request_id = refund_request_id(order.id)
    if rest > 0:
        await insert_if_absent(session, RefundOrder.__table__, dict(  # type: ignore[attr-defined]
            request_id=request_id, community_id=order.community_id, payment_id=order.provider_payment_id,
            provider=order.provider, amount_fen=rest, currency=str(order.paid_currency), reason_code="payment_review",
            reason=(note or order.review_reason)[:500], status="pending", attempts=0, next_attempt_at=utcnow(),
            last_error="", provider_refund_id=None, created_at=utcnow(), settled_at=None))
    await session.flush()
    return Decided(order, events=0, refund_request_id=request_id if rest > 0 else None, refund_fen=max(rest, 0))
