"""Reconciliation with the payment providers: a daily job compares our orders, payments and refunds with
the provider's records for a past window and reports every difference.

Provider-pluggable: a `Reconciler` per provider (`register_reconciler`), asked for the differences of a
window [start, end). Each difference is stored once (`reconciliation_difference`, unique per provider, kind
and reference: the overlapping windows of consecutive days find it again without a second row), listed at
`GET /api/v1/ops/reconciliation`, and the gauge `qunzhu_gateway_reconciliation_differences{provider,kind}`
holds the count the last run found (alert: PaymentReconciliationDifferences).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import PaymentOrder, PaymentRef, ProviderRefund, ReconciliationDifference
from gateway.orders.channels import ChannelDeps
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Difference:
    kind: str
    reference: str
    detail: str = ""


class Reconciler(Protocol):
    provider: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]  # every kind it may report: the gauge shows 0 for the others

    def configured(self, deps: ChannelDeps) -> bool: ...

    async def differences(self, session: AsyncSession, deps: ChannelDeps, start: datetime, end: datetime
                          ) -> list[Difference]: ...


RECONCILERS: dict[str, Reconciler] = {}


def register_reconciler(reconciler: Reconciler) -> Reconciler:
    RECONCILERS[reconciler.provider] = reconciler
    return reconciler


async def run(sessions: Any, deps: ChannelDeps, metrics: Any, *, now: datetime | None = None
              ) -> dict[str, list[Difference]]:
    """One reconciliation of every configured provider; a provider that fails is counted and skipped."""
    settings = deps.settings
    end = (now or utcnow()) - timedelta(seconds=settings.reconcile_settle_s)
    start = end - timedelta(seconds=settings.reconcile_window_s)
    found: dict[str, list[Difference]] = {}
    for provider, reconciler in RECONCILERS.items():
        if not reconciler.configured(deps):
            continue
        try:
            async with sessions() as session:
                differences = await reconciler.differences(session, deps, start, end)
            async with sessions() as session, session.begin():
                for d in differences:
                    await insert_if_absent(session, ReconciliationDifference.__table__, dict(  # type: ignore[attr-defined]
                        provider=provider, kind=d.kind, reference=d.reference[:200], detail=d.detail[:2000],
                        window_start=start, window_end=end, found_at=utcnow()))
        except Exception as exc:  # noqa: BLE001 - one provider down must not stop the others
            log.warning("reconciliation with %s failed: %r", provider, exc)
            metrics.reconciliation_runs.labels(provider, "failed").inc()
            continue
        counts = Counter(d.kind for d in differences)
        for kind in {*reconciler.kinds, *counts}:
            metrics.reconciliation_differences.labels(provider, kind).set(counts.get(kind, 0))
        metrics.reconciliation_runs.labels(provider, "ok").inc()
        if differences:
            log.warning("reconciliation with %s: %d differences (%s)", provider, len(differences), dict(counts))
        found[provider] = differences
    return found


async def paid_orders(session: AsyncSession, provider: str, start: datetime, end: datetime) -> list[PaymentOrder]:
    """The provider's orders paid here within [start, end) (paid, held for review, or refunded after one): the
    provider must know them."""
    return list((await session.execute(select(PaymentOrder).where(
        PaymentOrder.provider == provider, PaymentOrder.status.in_(("paid", "review", "refunded")),
        PaymentOrder.paid_at >= start, PaymentOrder.paid_at < end))).scalars().all())


class StripeReconciler:
    """PaymentIntents and Refunds created in the window, listed through the stripe library, against our
    orders, payment references and refunds."""

    provider: ClassVar[str] = "stripe"
    kinds: ClassVar[tuple[str, ...]] = (
        "payment_missing_here", "payment_missing_at_provider", "payment_amount_differs",
        "refund_missing_here", "refund_missing_at_provider", "refund_held",
    )

    def configured(self, deps: ChannelDeps) -> bool:
        return "stripe" in deps.clients

    async def differences(self, session: AsyncSession, deps: ChannelDeps, start: datetime, end: datetime
                          ) -> list[Difference]:
        client = deps.clients["stripe"]
        window = {"created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())}, "limit": 100}
        intents = [pi async for pi in (await client.v1.payment_intents.list_async(params=window)).auto_paging_iter()
                   if getattr(pi, "status", None) == "succeeded"]
        refunds = [r async for r in (await client.v1.refunds.list_async(params=window)).auto_paging_iter()
                   if getattr(r, "status", None) == "succeeded"]
        return [*await self._payments(session, intents, start, end), *await self._refunds(session, refunds, start, end)]

    async def _payments(self, session: AsyncSession, intents: list[Any], start: datetime, end: datetime
                        ) -> list[Difference]:
        found: list[Difference] = []
        ids = [pi.id for pi in intents]
        orders = {o.provider_payment_id: o for o in (await session.execute(select(PaymentOrder).where(
            PaymentOrder.provider == "stripe", PaymentOrder.provider_payment_id.in_(ids)))).scalars().all()
            } if ids else {}
        refs = {r.payment_id: r for r in (await session.execute(select(PaymentRef).where(
            PaymentRef.payment_id.in_(ids)))).scalars().all()} if ids else {}
        for pi in intents:
            amount = int(getattr(pi, "amount_received", 0) or 0)
            order, ref = orders.get(pi.id), refs.get(pi.id)
            ours = (order.paid_amount_fen if order is not None and order.paid_amount_fen is not None
                    else ref.amount_fen if ref is not None else None)
            if order is None and ref is None:
                named = _metadata(pi).get("order_id")
                found.append(Difference("payment_missing_here", pi.id, f"Stripe captured {amount} "
                                        f"{str(getattr(pi, 'currency', '')).upper()}; no payment here"
                                        + (f" (its order {named} never heard of it)" if named else "")))
            elif ours is not None and ours != amount:
                found.append(Difference("payment_amount_differs", pi.id, f"Stripe {amount}, here {ours}"))
        listed = set(ids)
        for order in await paid_orders(session, "stripe", start, end):
            if order.provider_payment_id not in listed:
                found.append(Difference("payment_missing_at_provider", order.provider_payment_id or order.id,
                                        f"order {order.id} is {order.status} here; Stripe lists no such payment"))
        return found

    async def _refunds(self, session: AsyncSession, refunds: list[Any], start: datetime, end: datetime
                       ) -> list[Difference]:
        found: list[Difference] = []
        theirs: dict[str, int] = defaultdict(int)
        for r in refunds:
            theirs[_payment_of(r)] += int(getattr(r, "amount", 0) or 0)
        payments = [p for p in theirs if p]
        rows = (await session.execute(select(ProviderRefund).where(
            ProviderRefund.provider == "stripe", ProviderRefund.payment_id.in_(payments)))).scalars().all() \
            if payments else []
        recorded_ids = {r.refund_id for r in rows}
        recorded_total: dict[str, int] = defaultdict(int)
        for row in rows:
            recorded_total[row.payment_id] += row.amount_fen
        for r in refunds:
            payment = _payment_of(r)
            if r.id not in recorded_ids and recorded_total.get(payment, 0) < theirs[payment]:
                found.append(Difference("refund_missing_here", r.id, f"Stripe refunded {getattr(r, 'amount', 0)} "
                                        f"of {payment or 'an unknown payment'}; not recorded here"))
        listed = {r.id for r in refunds}
        ours = (await session.execute(select(ProviderRefund).where(
            ProviderRefund.provider == "stripe", ProviderRefund.refunded_at >= start, ProviderRefund.refunded_at < end,
        ))).scalars().all()
        for row in ours:
            if row.status == "held":
                found.append(Difference("refund_held", row.refund_id, f"refund of {row.payment_id} held: its "
                                        "payment never arrived here"))
            elif not row.derived and row.amount_fen > 0 and row.refund_id not in listed:
                found.append(Difference("refund_missing_at_provider", row.refund_id,
                                        f"recorded here for {row.payment_id}; Stripe lists no such refund"))
        return found


def _metadata(obj: Any) -> dict[str, Any]:
    meta = getattr(obj, "metadata", None)  # a StripeObject is not a dict
    return meta.to_dict() if hasattr(meta, "to_dict") else dict(meta or {})


def _payment_of(refund: Any) -> str:
    return str(getattr(refund, "payment_intent", None) or getattr(refund, "charge", None) or "")


register_reconciler(StripeReconciler())
