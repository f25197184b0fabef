"""Payment notifications → our orders and refunds, whatever metadata the provider kept.

A notification is first *planned* (reads only): the events it means and the writes that go with them
(`Effects`). The writes are applied only once its delivery id is claimed (not a duplicate), in the same
transaction as the events, so a re-delivery changes nothing twice.

- A payment finds its order by our id (Stripe client_reference_id / metadata.order_id, WeChat Pay
  out_trade_no) or by the provider's payment id recorded on the order. The event is built from the order
  (community, payer, plan, referrer). A different amount or currency holds the order for review.
- Refunds are keyed by the provider's refund id (`ProviderRefund`): duplicates are dropped, partial refunds
  add up, and a refund whose payment (hence community) is not known yet is `held` and emitted with the
  payment when it arrives — exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.metrics import GatewayMetrics
from gateway.models import PaymentOrder, PaymentRef, ProviderRefund
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.timeutil import utcnow

EventTuple = tuple[str, str | None, dict[str, Any]]
ORDER_ID = re.compile(r"qz[0-9a-f]{24}")  # orders.service: "qz" + 24 hex; another reference is not ours
Step = Callable[[AsyncSession], Awaitable[None]]


@dataclass
class Effects:
    events: list[EventTuple] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def add(self, other: Effects) -> Effects:
        self.events.extend(other.events)
        self.steps.extend(other.steps)
        return self

    async def apply(self, session: AsyncSession) -> None:
        for step in self.steps:
            await step(session)
        await session.flush()


async def find_order(session: AsyncSession, provider: str, *, order_id: str | None = None,
                     provider_payment_id: str | None = None) -> PaymentOrder | None:
    if order_id:
        order = await session.get(PaymentOrder, order_id)
        if order is not None and order.provider == provider:
            return order
    if provider_payment_id:
        return (await session.execute(select(PaymentOrder).where(
            PaymentOrder.provider == provider, PaymentOrder.provider_payment_id == provider_payment_id
        ).limit(1))).scalar_one_or_none()
    return None


def _iso(value: datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


async def settle_payment(
    session: AsyncSession, order: PaymentOrder, *, payment_id: str, amount_fen: int | None, currency: str,
    paid_at: datetime | str, metrics: GatewayMetrics, charge_id: str | None = None,
) -> Effects:
    """A captured payment of `order`: payment.succeeded (and the refunds held for it), or a review."""
    effects = Effects()
    currency = currency.upper()
    reason = None
    if currency != order.currency:
        reason = "currency"
    elif amount_fen != order.amount_fen:
        reason = "amount"
    if order.status == "review":
        return effects  # already held; a resend changes nothing
    if order.provider_payment_id == payment_id and (
            order.status == "refunded" or (order.status == "paid" and reason is not None)):
        return effects  # decided by ops after a review (orders.review): a resend changes nothing
    if reason is not None:
        async def hold(_: AsyncSession) -> None:
            order.status, order.provider_payment_id = "review", payment_id
            order.paid_at = order.paid_at or _parse(paid_at)
            order.paid_amount_fen, order.paid_currency = amount_fen, currency
            order.review_reason = (f"{reason} differs: paid {amount_fen} {currency}, the order is "
                                   f"{order.amount_fen} {order.currency}")[:500]
            order.updated_at = utcnow()
            metrics.payment_reviews.labels(order.provider, reason).inc()
        effects.steps.append(hold)
        return effects
    effects.events.append(("payment.succeeded", order.community_id, dict(
        payment_id=payment_id, provider=order.provider, payer_id=order.payer_id, plan_id=order.plan_id,
        amount_fen=amount_fen, currency=currency, referrer_id=order.referrer_id, paid_at=_iso(paid_at))))

    async def mark(_: AsyncSession) -> None:
        if order.status != "paid":
            order.status, order.paid_at = "paid", _parse(paid_at)
        order.provider_payment_id = payment_id
        order.paid_amount_fen, order.paid_currency, order.updated_at = amount_fen, currency, utcnow()
    effects.steps.append(mark)
    return effects.add(await release_held(session, order.provider, payment_id=payment_id,
                                          community_id=order.community_id, order_id=order.id, charge_id=charge_id))


def _parse(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def release_held(session: AsyncSession, provider: str, *, payment_id: str, community_id: str,
                       order_id: str | None = None, charge_id: str | None = None) -> Effects:
    """The refunds held for a payment now known: emitted with it, once."""
    keys = [ProviderRefund.payment_id == payment_id]
    if charge_id:
        keys.append(ProviderRefund.charge_id == charge_id)
    if order_id:
        keys.append(ProviderRefund.order_id == order_id)
    held = list((await session.execute(select(ProviderRefund).where(
        ProviderRefund.provider == provider, ProviderRefund.status == "held", or_(*keys),
    ).order_by(ProviderRefund.refunded_at, ProviderRefund.refund_id))).scalars().all())
    effects = Effects()
    for row in held:
        effects.events.append(_refund_event(row, payment_id=payment_id, community_id=community_id))

    async def emitted(_: AsyncSession) -> None:
        for row in held:
            row.status, row.payment_id = "emitted", payment_id
            row.order_id = row.order_id or order_id
    if held:
        effects.steps.append(emitted)
    return effects


def _refund_event(row: ProviderRefund, *, payment_id: str, community_id: str) -> EventTuple:
    return ("payment.refunded", community_id, dict(
        payment_id=payment_id, refund_id=row.refund_id, provider=row.provider, amount_fen=row.amount_fen,
        currency=row.currency, reason=row.reason, refunded_at=_iso(row.refunded_at)))


@dataclass
class RefundBook:
    """The refunds recorded for one payment, plus those planned by the notification being processed."""

    provider: str
    payment_id: str
    charge_id: str | None
    rows: list[ProviderRefund]

    @classmethod
    async def load(cls, session: AsyncSession, provider: str, *, payment_id: str,
                   charge_id: str | None = None) -> RefundBook:
        keys = [ProviderRefund.payment_id == payment_id]
        if charge_id:
            keys += [ProviderRefund.charge_id == charge_id, ProviderRefund.payment_id == charge_id]
        rows = list((await session.execute(select(ProviderRefund).where(
            ProviderRefund.provider == provider, or_(*keys)))).scalars().all())
        return cls(provider, payment_id, charge_id, rows)

    def has(self, refund_id: str) -> bool:
        return any(r.refund_id == refund_id for r in self.rows)

    @property
    def total(self) -> int:
        return sum(r.amount_fen for r in self.rows)

    def unclaimed(self) -> list[ProviderRefund]:
        return [r for r in self.rows if r.derived and r.claimed_fen < r.amount_fen]


async def record_refund(
    session: AsyncSession, book: RefundBook, *, refund_id: str, amount_fen: int, currency: str,
    refunded_at: datetime, reason: str = "", derived: bool = False, order: PaymentOrder | None = None,
    community_id: str | None = None,
) -> Effects:
    """One refund by the provider's refund id: its share of the payment's refunded total, emitted at once
    when the payment's community is known, else held until the payment arrives."""
    effects = Effects()
    if book.has(refund_id) or amount_fen <= 0:
        return effects
    contribution, claims = amount_fen, []
    if not derived:  # money a charge.refunded difference already reported under a made-up id
        for row in book.unclaimed():
            take = min(contribution, row.amount_fen - row.claimed_fen)
            if take > 0:
                claims.append((row, take))
                contribution -= take
    if order is None:
        order = await find_order(session, book.provider, provider_payment_id=book.payment_id)
    # Under review: held until ops decide (a grant sends it with the payment). Refunded by that decision:
    # `settled`, never sent — membership never saw the payment.
    undecided = order is not None and order.status == "review"
    settled = order is not None and order.status == "refunded"
    if undecided or settled:
        community_id = None
    elif community_id is None and order is not None and order.status == "paid":
        community_id = order.community_id
    if community_id is None and not (undecided or settled):
        ref_ids = [p for p in (book.payment_id, book.charge_id) if p]
        ref = (await session.execute(select(PaymentRef).where(PaymentRef.payment_id.in_(ref_ids)).limit(1))
               ).scalar_one_or_none()
        community_id = ref.community_id if ref is not None else None
    payment_id = order.provider_payment_id if order is not None and order.provider_payment_id else book.payment_id
    row = ProviderRefund(
        provider=book.provider, refund_id=refund_id, payment_id=payment_id, charge_id=book.charge_id,
        order_id=order.id if order is not None else None, amount_fen=contribution, currency=currency.upper(),
        derived=derived, reason=reason[:500],
        status="settled" if settled else "emitted" if community_id or contribution == 0 else "held",
        refunded_at=refunded_at,
    )
    book.rows.append(row)
    if contribution > 0 and community_id:
        effects.events.append(_refund_event(row, payment_id=payment_id, community_id=community_id))

    async def write(s: AsyncSession) -> None:
        for claimed, take in claims:
            claimed.claimed_fen += take
        # Two notifications of one refund at once (refund.updated, charge.refund.updated): the first one's
        # row stands; the event both staged carries the same refund id, which membership applies once.
        await insert_if_absent(s, ProviderRefund.__table__, {  # type: ignore[attr-defined]
            c.name: getattr(row, c.name) for c in ProviderRefund.__table__.columns})  # type: ignore[attr-defined]
    effects.steps.append(write)
    return effects


def payment_ids_of(rows: Sequence[ProviderRefund]) -> list[str]:
    return sorted({r.payment_id for r in rows})
