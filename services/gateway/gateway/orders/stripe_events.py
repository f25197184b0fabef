"""Stripe events → our orders, payments and refunds (planned here, applied by payments.service).

- `checkout.session.completed` (paid; or `.async_payment_succeeded`) and `payment_intent.succeeded`: the
  order by client_reference_id / metadata.order_id, else by the PaymentIntent id recorded on it; its
  PaymentIntent id is recorded. An order id of ours whose order is not found (yet) is retried: 503, kept
  as `retry_requested`, the event id not used up (payments.retry). Without an order reference, today's
  documented metadata {community_id, plan_id, payer_id} still works (payments started outside Qunzhu).
  `checkout.session.expired` expires the order.
- Refunds by Stripe's refund id: `refund.created`, `refund.updated`, `charge.refund.updated` (a refund
  object; only `succeeded` counts), and `charge.refunded`: each refund it embeds, and — API versions from
  2022-11-15 embed none — the rest of `amount_refunded` beyond what is recorded for the payment, under
  `<charge>:refunded:<amount_refunded>` (a resend dedupes; a second partial refund does not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.metrics import GatewayMetrics
from gateway.models import PaymentOrder
from gateway.orders import notify
from gateway.orders.notify import Effects, EventTuple, RefundBook
from gateway.payments import stripe_hook
from gateway.payments.retry import RetryLater
from gateway.webhooks.commands import Unnormalisable
from qunzhu_common.timeutil import utcnow

REFUND_OBJECT_EVENTS = frozenset({"refund.created", "refund.updated", "charge.refund.updated"})
PROVIDER = "stripe"
# A delayed payment method completes the session unpaid and pays later (async_payment_succeeded).
CHECKOUT_PAID = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
MAX_ID = 200
MAX_ORDER_ID = 32
MAX_AMOUNT = 2_000_000_000  # fen; the columns are 32-bit integers


@dataclass
class StripePlan:
    """What one Stripe event means: events to emit (or the error that quarantines it) and writes."""

    effects: Effects = field(default_factory=Effects)
    legacy: Callable[[dict[str, str]], list[EventTuple]] | None = None  # the metadata path, no order
    problem: Exception | None = None  # RetryLater: raised when mapped (answered 503, the provider retries)

    def mapper(self, community_of: dict[str, str]) -> list[EventTuple]:
        if self.problem is not None:
            raise self.problem
        events = list(self.legacy(community_of)) if self.legacy is not None else []
        return events + self.effects.events


def _at(seconds: Any) -> datetime:
    return datetime.fromtimestamp(int(seconds or 0), UTC)


def _id(value: Any, what: str) -> str | None:
    """A Stripe id as we can store it (≤ 200 characters), or None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_ID:
        raise Unnormalisable(f"{what} is not a Stripe id")
    return value


def _amount(value: Any, what: str) -> int:
    amount = int(value or 0)
    if not 0 <= amount <= MAX_AMOUNT:
        raise Unnormalisable(f"{what} {amount} is out of range")
    return amount


class _Broken(StripePlan):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def mapper(self, community_of: dict[str, str]) -> list[EventTuple]:
        raise Unnormalisable(self.reason)


async def plan(session: AsyncSession, event: dict[str, Any], *, metrics: GatewayMetrics) -> StripePlan:
    """The plan of a verified event; one whose fields cannot be what Stripe sends is quarantined."""
    try:
        return await _plan(session, event, metrics=metrics)
    except Unnormalisable as exc:
        return _Broken(str(exc))
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return _Broken(str(Unnormalisable(f"{type(exc).__name__}: {exc}")))


async def _plan(session: AsyncSession, event: dict[str, Any], *, metrics: GatewayMetrics) -> StripePlan:
    kind = str(event.get("type") or "")
    obj = (event.get("data") or {}).get("object") or {}
    created = _at(event.get("created"))
    if kind in CHECKOUT_PAID or kind == "payment_intent.succeeded":
        return await _payment(session, kind, obj, created, event, metrics)
    if kind == "checkout.session.expired":
        order = await notify.find_order(session, PROVIDER, order_id=_order_id(obj))
        result = StripePlan()
        if order is not None and order.status == "created":
            async def expire(_: AsyncSession) -> None:
                order.status, order.updated_at = "expired", utcnow()
            result.effects.steps.append(expire)
        return result
    if kind == "payment_intent.payment_failed":
        intent = _id(obj.get("id"), "the PaymentIntent id")
        order = await notify.find_order(session, PROVIDER, order_id=_order_id(obj), provider_payment_id=intent)
        if order is None and _ours(obj):
            return _unknown_order(obj)
        if order is not None:
            error = obj.get("last_payment_error") or {}
            result = StripePlan()
            result.effects.events.append(("payment.failed", order.community_id, dict(
                payment_id=intent, provider=PROVIDER, payer_id=order.payer_id, plan_id=order.plan_id,
                reason=str(error.get("message") or error.get("code") or "")[:500], failed_at=created.isoformat())))
            return result
        return StripePlan(legacy=lambda community_of: stripe_hook.normalise(event, community_of=community_of))
    if kind in REFUND_OBJECT_EVENTS:
        return StripePlan(await _refund_object(session, obj, created))
    if kind == "charge.refunded":
        return StripePlan(await _charge_refunded(session, obj, created))
    return StripePlan()


def _order_id(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    found = obj.get("client_reference_id") or meta.get("order_id")
    return found if isinstance(found, str) and 0 < len(found) <= MAX_ORDER_ID else None  # else not one of ours


def _ours(obj: dict[str, Any]) -> str | None:
    """The order reference when it has the form of Qunzhu's order ids (not a front end's own reference)."""
    found = _order_id(obj)
    return found if found is not None and notify.ORDER_ID.fullmatch(found) else None


def _unknown_order(obj: dict[str, Any]) -> StripePlan:
    """Our order id, and no such order (yet): Stripe retries (for three days), ops can replay the kept copy."""
    return StripePlan(problem=RetryLater("order_unknown", f"order {_ours(obj)} is not known (yet)"))


async def _payment(session: AsyncSession, kind: str, obj: dict[str, Any], created: datetime, event: dict[str, Any],
                   metrics: GatewayMetrics) -> StripePlan:
    checkout = kind in CHECKOUT_PAID
    payment_id = _id((obj.get("payment_intent") or obj.get("id")) if checkout else obj.get("id"), "the payment id")
    order = await notify.find_order(session, PROVIDER, order_id=_order_id(obj), provider_payment_id=payment_id)
    charge_id = None if checkout else _id(obj.get("latest_charge"), "latest_charge")
    if order is None and _ours(obj):
        return _unknown_order(obj)
    if order is None:  # started outside Qunzhu: the metadata names community, plan and payer, as before
        result = StripePlan(legacy=lambda community_of: stripe_hook.normalise(event, community_of=community_of))
        meta = obj.get("metadata") or {}
        paid = (not checkout) or obj.get("payment_status") == "paid"
        if paid and meta.get("community_id") and payment_id:
            result.effects.add(await notify.release_held(session, PROVIDER, payment_id=str(payment_id),
                                                         community_id=str(meta["community_id"]), charge_id=charge_id))
        return result
    if checkout and obj.get("payment_status") != "paid":  # an asynchronous method: payment_intent.succeeded follows
        result = StripePlan()
        if payment_id and not order.provider_payment_id:
            async def remember(_: AsyncSession) -> None:
                order.provider_payment_id, order.updated_at = payment_id, utcnow()
            result.effects.steps.append(remember)
        return result
    amount = obj.get("amount_total") if checkout else obj.get("amount_received")
    effects = await notify.settle_payment(
        session, order, payment_id=str(payment_id),
        amount_fen=_amount(amount, "the amount") if amount is not None else None,
        currency=str(obj.get("currency") or ""), paid_at=created, metrics=metrics, charge_id=charge_id)
    return StripePlan(effects)


def _refund_order(obj: dict[str, Any]) -> str | None:
    found = (obj.get("metadata") or {}).get("order_id")
    return found if isinstance(found, str) and 0 < len(found) <= MAX_ORDER_ID else None


async def _book_and_order(session: AsyncSession, payment_id: str, charge_id: str | None, order_id: str | None
                          ) -> tuple[RefundBook, PaymentOrder | None]:
    order = await notify.find_order(session, PROVIDER, order_id=order_id, provider_payment_id=payment_id)
    if order is not None and order.provider_payment_id:
        payment_id = order.provider_payment_id
    return await RefundBook.load(session, PROVIDER, payment_id=payment_id, charge_id=charge_id), order


async def _refund_object(session: AsyncSession, refund: dict[str, Any], created: datetime) -> Effects:
    if refund.get("status") != "succeeded" or not refund.get("id"):
        return Effects()  # pending, failed, canceled, requires_action: no money back (yet)
    charge_id = _id(refund.get("charge"), "the refund's charge")
    payment_id = _id(refund.get("payment_intent"), "the refund's payment_intent")
    payment_id = payment_id or charge_id
    if not payment_id:
        return Effects()
    book, order = await _book_and_order(session, payment_id, charge_id, _refund_order(refund))
    return await notify.record_refund(
        session, book, refund_id=str(_id(refund["id"], "the refund id")),
        amount_fen=_amount(refund.get("amount"), "the refund"),
        currency=str(refund.get("currency") or (order.currency if order else "cny")),
        refunded_at=_at(refund.get("created")) if refund.get("created") else created,
        reason=str(refund.get("reason") or ""), order=order,
        community_id=(refund.get("metadata") or {}).get("community_id") or None)


async def _charge_refunded(session: AsyncSession, charge: dict[str, Any], created: datetime) -> Effects:
    charge_id = _id(charge.get("id"), "the charge id")
    payment_id = _id(charge.get("payment_intent"), "the charge's payment_intent") or charge_id
    if not payment_id:
        return Effects()
    book, order = await _book_and_order(session, str(payment_id), charge_id, _refund_order(charge))
    currency = str(charge.get("currency") or (order.currency if order else "cny"))
    community_id = (charge.get("metadata") or {}).get("community_id") or None
    effects = Effects()
    unnamed: list[dict[str, Any]] = []
    for refund in (charge.get("refunds") or {}).get("data") or []:
        if not isinstance(refund, dict) or not refund.get("id") or refund.get("status") not in (None, "succeeded"):
            continue
        if refund.get("amount") is None:
            unnamed.append(refund)
            continue
        effects.add(await notify.record_refund(
            session, book, refund_id=str(_id(refund["id"], "the refund id")),
            amount_fen=_amount(refund["amount"], "the refund"), currency=currency,
            refunded_at=_at(refund["created"]) if refund.get("created") else created,
            reason=str(refund.get("reason") or ""), order=order, community_id=community_id))
    rest = _amount(charge.get("amount_refunded"), "amount_refunded") - book.total
    if rest > 0:
        named = unnamed[-1] if unnamed else None  # an embedded refund without its amount: the rest is it
        refund_id = str(named["id"]) if named else f"{charge_id}:refunded:{charge.get('amount_refunded')}"
        effects.add(await notify.record_refund(
            session, book, refund_id=refund_id,
            amount_fen=rest, currency=currency, refunded_at=created, derived=named is None,
            reason=str((named or {}).get("reason") or ""), order=order, community_id=community_id))
    return effects
