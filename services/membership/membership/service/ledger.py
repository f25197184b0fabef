"""Revenue and commission ledger in fen.

A payment of P fen is split once into owner + platform fee + referral commission (+ suspense when the
payment could not be applied), the parts always summing to P. Refunds take money back from the same
accounts in proportion, computed on *cumulative* refunded amounts with the largest-remainder method, so
every account's balance for a payment stays within [0, its share], a full refund returns every share
exactly, and all entries of a payment always sum to P − refunded. Entries are only ever inserted, under a
unique (payment, source, account) key: a replayed event cannot write them twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.models import LedgerEntry, Payment, Refund
from membership.models.payment import LedgerSummary
from qunzhu_common.events.contracts.membership import RevenueRecorded

ACCOUNTS = ("owner", "platform", "referrer", "suspense")


@dataclass(frozen=True)
class Split:
    owner: int
    platform: int
    referrer: int
    suspense: int

    def as_list(self) -> list[int]:
        return [self.owner, self.platform, self.referrer, self.suspense]

    @property
    def total(self) -> int:
        return sum(self.as_list())


def split_payment(amount: int, *, platform_bps: int, referral_bps: int, has_referrer: bool) -> Split:
    """Floor the commissions (in the owner's favour); the owner gets the exact remainder."""
    platform = amount * platform_bps // 10_000
    referrer = amount * referral_bps // 10_000 if has_referrer else 0
    return Split(owner=amount - platform - referrer, platform=platform, referrer=referrer, suspense=0)


def allocate(shares: list[int], taken: int) -> list[int]:
    """Largest-remainder split of `taken` (≤ sum of shares) in proportion to `shares`; each part ≤ its share."""
    whole = sum(shares)
    if not 0 <= taken <= whole:
        raise ValueError(f"cannot allocate {taken} of {whole}")
    if whole == 0:
        return [0] * len(shares)
    parts = [s * taken // whole for s in shares]
    remainders = sorted(range(len(shares)), key=lambda i: (-(shares[i] * taken % whole), i))
    for i in remainders[: taken - sum(parts)]:
        parts[i] += 1
    return parts


def payment_split(payment: Payment) -> Split:
    assert payment.amount_fen is not None
    owner, platform, referrer = payment.owner_fen, payment.platform_fee_fen, payment.referral_commission_fen
    return Split(owner, platform, referrer, payment.amount_fen - owner - platform - referrer)


async def _write(
    session: AsyncSession, ctx: MembershipContext, *, payment: Payment, source_id: str, kind: str, parts: list[int],
    sign: int, refund_id: str | None, amount: int, occurred_at,
) -> None:
    for account, value in zip(ACCOUNTS, parts, strict=True):
        if value == 0:
            continue
        session.add(LedgerEntry(
            community_id=payment.community_id, payment_id=payment.payment_id, source_id=source_id, kind=kind,
            account=account, beneficiary_id=payment.referrer_id if account == "referrer" else None,
            amount_fen=sign * value, currency=payment.currency or "CNY", occurred_at=occurred_at,
        ))
    await session.flush()
    await ctx.outbox.emit(
        session, type="revenue.recorded", community_id=payment.community_id,
        data=RevenueRecorded(
            community_id=payment.community_id, payment_id=payment.payment_id, refund_id=refund_id, kind=kind,
            amount_fen=amount, currency=payment.currency or "CNY", owner_fen=parts[0], platform_fee_fen=parts[1],
            referral_commission_fen=parts[2], suspense_fen=parts[3],
            referrer_id=payment.referrer_id if parts[2] else None, occurred_at=occurred_at,
        ),
    )


async def record_payment(session: AsyncSession, ctx: MembershipContext, *, payment: Payment) -> None:
    split = payment_split(payment)
    await _write(session, ctx, payment=payment, source_id=payment.payment_id, kind="payment",
                 parts=split.as_list(), sign=1, refund_id=None, amount=split.total, occurred_at=payment.paid_at)


async def record_refund(
    session: AsyncSession, ctx: MembershipContext, *, payment: Payment, refund: Refund, before: int, after: int
) -> None:
    shares = payment_split(payment).as_list()
    then, now = allocate(shares, before), allocate(shares, after)
    parts = [b - a for a, b in zip(then, now, strict=True)]
    await _write(session, ctx, payment=payment, source_id=refund.refund_id, kind="refund", parts=parts, sign=-1,
                 refund_id=refund.refund_id, amount=after - before, occurred_at=refund.refunded_at)


async def summary(session: AsyncSession, *, community_id: str) -> list[LedgerSummary]:
    """Per currency: what was captured and refunded, where it went, and whether it all adds up."""
    captured = dict((await session.execute(
        select(Payment.currency, func.coalesce(func.sum(Payment.amount_fen), 0))
        .where(Payment.community_id == community_id, Payment.amount_fen.is_not(None))
        .group_by(Payment.currency)
    )).all())
    refunded = dict((await session.execute(
        select(Payment.currency, func.coalesce(func.sum(Refund.applied_fen), 0))
        .join(Payment, Payment.payment_id == Refund.payment_id)
        .where(Payment.community_id == community_id, Refund.applied.is_(True))
        .group_by(Payment.currency)
    )).all())
    by_account: dict[str, dict[str, int]] = {}
    for currency, account, total in (await session.execute(
        select(LedgerEntry.currency, LedgerEntry.account, func.sum(LedgerEntry.amount_fen))
        .where(LedgerEntry.community_id == community_id)
        .group_by(LedgerEntry.currency, LedgerEntry.account)
    )).all():
        by_account.setdefault(currency, {})[account] = int(total or 0)
    result = []
    for currency in sorted(set(captured) | set(by_account)):
        accounts = by_account.get(currency, {})
        cap, ref = int(captured.get(currency, 0)), int(refunded.get(currency, 0))
        parts = {a: accounts.get(a, 0) for a in ACCOUNTS}
        result.append(LedgerSummary(
            community_id=community_id, currency=currency, captured_fen=cap, refunded_fen=ref, net_fen=cap - ref,
            owner_fen=parts["owner"], platform_fee_fen=parts["platform"],
            referral_commission_fen=parts["referrer"], suspense_fen=parts["suspense"],
            reconciled=(cap - ref == sum(parts.values()) and all(v >= 0 for v in parts.values())),
        ))
    return result
