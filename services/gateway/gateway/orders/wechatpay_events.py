"""WeChat Pay notifications → our orders, payments and refunds (planned here, applied by payments.service).

- `TRANSACTION.*`: the order by `out_trade_no` (our order id; `attach` carries it too), else by the
  transaction id recorded on it. SUCCESS settles it (a different amount or currency holds it for review);
  PAYERROR / CLOSED / REVOKED fail it. Without an order, today's documented attach JSON {community_id,
  plan_id, payer_id} still works (payments started outside Qunzhu). An out_trade_no of ours whose order is
  not found (yet) is retried: 503, never quarantined.
- `REFUND.SUCCESS` is a refund keyed by `out_refund_no` (our refund request id when Qunzhu asked for it):
  duplicates dropped, partial refunds add up, held until its payment is known. `REFUND.ABNORMAL` /
  `REFUND.CLOSED`: the money did not reach the payer — a refund Qunzhu requested becomes `failed` with
  `refund.failed` (someone must refund by hand); access is not revoked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.metrics import GatewayMetrics
from gateway.models import RefundOrder
from gateway.orders import notify
from gateway.orders.notify import Effects, EventTuple, RefundBook
from gateway.payments import wechatpay
from gateway.payments.retry import RetryLater
from gateway.webhooks.commands import Unnormalisable
from qunzhu_common.timeutil import utcnow

PROVIDER = "wechatpay"
ORDER_ID = notify.ORDER_ID


@dataclass
class WechatPlan:
    effects: Effects = field(default_factory=Effects)
    legacy: Callable[[dict[str, str]], list[EventTuple]] | None = None  # the attach-JSON path, no order
    problem: Exception | None = None  # RetryLater or Unnormalisable, raised when mapped

    def mapper(self, community_of: dict[str, str]) -> list[EventTuple]:
        if self.problem is not None:
            raise self.problem
        events = list(self.legacy(community_of)) if self.legacy is not None else []
        return events + self.effects.events


def _time(value: Any, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return default
    return parsed if parsed.tzinfo is not None else default


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Fields WeChat Pay keeps short (ids ≤ 64, a currency of 3 letters); longer ones cannot be stored, and are
# quarantined rather than failing the database write.
_LIMITS = {"transaction_id": 200, "out_trade_no": 200, "out_refund_no": 200, "refund_id": 200}


def _check(resource: dict[str, Any]) -> None:
    for key, limit in _LIMITS.items():
        if len(str(resource.get(key) or "")) > limit:
            raise Unnormalisable(f"{key} is over {limit} characters")
    currency = (resource.get("amount") or {}).get("currency")
    if currency is not None and not (isinstance(currency, str) and len(currency) == 3):
        raise Unnormalisable(f"amount.currency {str(currency)[:20]!r} is not a currency code")


async def plan(session: AsyncSession, notification: dict[str, Any], resource: dict[str, Any], *,
               metrics: GatewayMetrics) -> WechatPlan:
    try:
        _check(resource)
    except Unnormalisable as exc:
        return WechatPlan(problem=exc)
    kind = str(notification.get("event_type") or "")
    created = _time(notification.get("create_time"), utcnow())
    if kind.startswith("TRANSACTION."):
        return await _transaction(session, notification, resource, created, metrics)
    if kind == "REFUND.SUCCESS":
        return WechatPlan(await _refund_success(session, resource, created))
    if kind in ("REFUND.ABNORMAL", "REFUND.CLOSED"):
        return WechatPlan(await _refund_failed(session, kind, resource, created, metrics))
    return WechatPlan()


async def _transaction(session: AsyncSession, notification: dict[str, Any], resource: dict[str, Any],
                       created: datetime, metrics: GatewayMetrics) -> WechatPlan:
    out_trade_no = str(resource.get("out_trade_no") or "")
    attach = str(resource.get("attach") or "")
    transaction_id = str(resource.get("transaction_id") or "") or None
    ours = next((v for v in (out_trade_no, attach) if ORDER_ID.fullmatch(v)), None)
    order = await notify.find_order(session, PROVIDER, order_id=ours, provider_payment_id=transaction_id)
    if order is None:
        if ours is not None:  # our order id, and no order (yet): WeChat Pay retries, ops can replay
            return WechatPlan(problem=RetryLater("order_unknown", f"order {ours} is not known (yet)"))
        return WechatPlan(legacy=lambda community_of: wechatpay.normalise(notification, resource,
                                                                         community_of=community_of))
    state = resource.get("trade_state")
    amount = resource.get("amount") or {}
    if state == "SUCCESS" and transaction_id:
        effects = await notify.settle_payment(
            session, order, payment_id=transaction_id, amount_fen=_int(amount.get("total")),
            currency=str(amount.get("currency") or "CNY"), paid_at=_time(resource.get("success_time"), created),
            metrics=metrics)
        return WechatPlan(effects)
    if state in ("PAYERROR", "CLOSED", "REVOKED") and order.status == "created":
        result = WechatPlan()
        result.effects.events.append(("payment.failed", order.community_id, dict(
            payment_id=transaction_id or order.id, provider=PROVIDER, payer_id=order.payer_id, plan_id=order.plan_id,
            reason=str(resource.get("trade_state_desc") or state)[:500], failed_at=created.isoformat())))

        async def close(_: AsyncSession) -> None:
            order.status = "closed" if state in ("CLOSED", "REVOKED") else "failed"
            order.last_error, order.updated_at = str(resource.get("trade_state_desc") or state)[:2000], utcnow()
        result.effects.steps.append(close)
        return result
    return WechatPlan()  # NOTPAY, USERPAYING, a failure after the payment: nothing to record


def _refund_key(resource: dict[str, Any]) -> str | None:
    return str(resource.get("out_refund_no") or resource.get("refund_id") or "") or None


async def _refund_success(session: AsyncSession, resource: dict[str, Any], created: datetime) -> Effects:
    refund_id, transaction_id = _refund_key(resource), str(resource.get("transaction_id") or "")
    out_trade_no = str(resource.get("out_trade_no") or "")
    order = await notify.find_order(session, PROVIDER, order_id=out_trade_no if ORDER_ID.fullmatch(out_trade_no)
                                    else None, provider_payment_id=transaction_id or None)
    payment_id = (order.provider_payment_id if order is not None else None) or transaction_id
    amount = _int((resource.get("amount") or {}).get("refund"))
    if not refund_id or not payment_id or amount is None:
        return Effects()
    book = await RefundBook.load(session, PROVIDER, payment_id=payment_id)
    return await notify.record_refund(
        session, book, refund_id=refund_id, amount_fen=amount,
        currency=str((resource.get("amount") or {}).get("currency") or "CNY"),
        refunded_at=_time(resource.get("success_time"), created), order=order)


async def _refund_failed(session: AsyncSession, kind: str, resource: dict[str, Any], created: datetime,
                         metrics: GatewayMetrics) -> Effects:
    refund_id = _refund_key(resource)
    request = await session.get(RefundOrder, refund_id) if refund_id else None
    if request is None or request.provider != PROVIDER or request.status == "failed":
        return Effects()  # made outside Qunzhu, or already failed: nothing was promised here
    reason = f"wechatpay: refund {resource.get('refund_id') or refund_id} is {kind.removeprefix('REFUND.')}" \
        + (f" ({resource['user_received_account']})" if resource.get("user_received_account") else "")
    effects = Effects()
    effects.events.append(("refund.failed", request.community_id, dict(
        request_id=request.request_id, payment_id=request.payment_id, provider=PROVIDER,
        amount_fen=request.amount_fen, currency=request.currency, reason=reason, attempts=request.attempts,
        failed_at=created.isoformat())))

    async def fail(_: AsyncSession) -> None:
        request.status, request.last_error, request.settled_at = "failed", reason[:2000], utcnow()
        metrics.refunds.labels(PROVIDER, "failed").inc()
    effects.steps.append(fail)
    return effects
