"""Verified payment notifications → dedupe on the provider's event id → payments.events.v1 or quarantine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import PaymentRef
from gateway.orders import stripe_events, wechatpay_events
from gateway.payments import retry, stripe_hook, wechatpay
from gateway.state import GatewayState
from gateway.webhooks.adapters import body_digest
from gateway.webhooks.commands import Unnormalisable
from gateway.webhooks.ingest import MAX_DELIVERY_ID, Outcome, Staged, record_delivery, stage
from qunzhu_common import jsonbody
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.outbox import OutboxWriter

Mapper = Callable[[dict[str, str]], list[tuple[str, str | None, dict]]]
# The headers a provider's signature needs: kept with a quarantined body so a replay re-verifies it.
SIGNED_HEADERS = {
    "stripe": ("stripe-signature",),
    "wechatpay": ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial",
                  "wechatpay-signature-type"),
}


def signed_headers(provider: str, headers: Mapping[str, str]) -> dict[str, str]:
    lower = {k.lower(): v for k, v in headers.items()}
    return {name: lower[name] for name in SIGNED_HEADERS[provider] if name in lower}


async def _communities(session: AsyncSession, payment_ids: Sequence[str]) -> dict[str, str]:
    if not payment_ids:
        return {}
    rows = await session.execute(select(PaymentRef).where(PaymentRef.payment_id.in_(list(payment_ids))))
    return {r.payment_id: r.community_id for r in rows.scalars().all()}


async def _record(
    session: AsyncSession, *, state: GatewayState, outbox: OutboxWriter, provider: str, delivery_id: str,
    payment_ids: Sequence[str], mapper: Mapper, payload: bytes, headers: Mapping[str, str] | None = None,
) -> Outcome:
    if len(delivery_id) > MAX_DELIVERY_ID:  # an absurd provider id: the body's digest still deduplicates
        delivery_id = body_digest(payload)
    community_of = await _communities(session, payment_ids)  # a database failure is a 503, not a quarantine
    reason: str | None = None
    try:
        staged = [stage(outbox.registry, t, c, d) for t, c, d in mapper(community_of)]
    except retry.RetryLater as exc:  # authentic, but not processable yet: the provider is asked to retry
        state.metrics.retries_requested.labels(provider, exc.reason).inc()
        return await retry.keep(session, provider=provider, delivery_id=delivery_id, payload=payload,
                                headers=signed_headers(provider, headers or {}), error=exc)
    except Unnormalisable as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - a verified notification that breaks the mapping is quarantined
        reason = str(Unnormalisable(f"{type(exc).__name__}: {exc}"))
    if reason is not None:
        outcome = await record_delivery(session, outbox=outbox, source=provider, platform=provider,
                                        delivery_id=delivery_id, quarantine_reason=reason, payload=payload,
                                        headers=signed_headers(provider, headers or {}))
    else:
        outcome = await record_delivery(session, outbox=outbox, source=provider, platform=provider,
                                        delivery_id=delivery_id, events=staged)
        if outcome.status != "duplicate":
            await retry.forget(session, provider=provider, delivery_id=delivery_id)
        if outcome.status == "accepted":
            await _remember(session, staged)
            for event in staged:
                state.metrics.webhook_events.labels(event.type).inc()
    state.metrics.webhooks.labels(provider, outcome.status).inc()
    return outcome


async def _remember(session: AsyncSession, staged: Sequence[Staged]) -> None:
    """Keep which community a payment belongs to: refunds often do not repeat it."""
    for event in staged:
        if event.type == "payment.succeeded":
            data: Any = event.payload
            await insert_if_absent(session, PaymentRef.__table__, dict(  # type: ignore[attr-defined]
                payment_id=data.payment_id, provider=data.provider, community_id=event.community_id,
                payer_id=data.payer_id, plan_id=data.plan_id, amount_fen=data.amount_fen))


async def receive_stripe(
    session: AsyncSession, *, state: GatewayState, outbox: OutboxWriter, body: bytes, signature: str | None,
    tolerance_s: int | None = stripe_hook.TOLERANCE_S,
) -> Outcome:
    """`tolerance_s=None` re-verifies the signature without the freshness window (an ops replay)."""
    secrets = [s.get_secret_value() for s in state.settings.stripe_webhook_secrets]
    try:
        event = stripe_hook.verify(body, signature, secrets, tolerance_s=tolerance_s)
    except Exception as exc:
        state.metrics.refused("stripe", getattr(exc, "reason", "error"))
        raise
    planned = await stripe_events.plan(session, event, metrics=state.metrics)  # the order, refunds by id
    outcome = await _record(
        session, state=state, outbox=outbox, provider="stripe", delivery_id=str(event.get("id") or ""),
        payment_ids=stripe_hook.payment_ids(event), payload=body, headers={"stripe-signature": signature or ""},
        mapper=planned.mapper,
    )
    if outcome.status in ("accepted", "ignored"):  # the delivery is ours: its writes go with its events
        await planned.effects.apply(session)
    return outcome


async def receive_wechatpay(
    session: AsyncSession, *, state: GatewayState, outbox: OutboxWriter, body: bytes, headers: Mapping[str, str],
    certificates: wechatpay.PlatformKeys | Sequence[Any], tolerance_s: int | None | Literal["settings"] = "settings",
) -> Outcome:
    """`tolerance_s=None` re-verifies the signature without the freshness window (an ops replay)."""
    try:
        wechatpay.verify(headers, body, certificates,
                         tolerance_s=state.settings.webhook_tolerance_s if tolerance_s == "settings" else tolerance_s)
    except Exception as exc:
        state.metrics.refused("wechatpay", getattr(exc, "reason", "error"))
        raise
    try:
        notification = jsonbody.loads(body)
        delivery_id = str(notification["id"])
    except (ValueError, KeyError, TypeError):  # InvalidJson (deep, a lone surrogate…) is a ValueError
        notification, delivery_id = None, body_digest(body)
    resource: dict[str, Any] = {}
    problem: Exception | None = None
    if not isinstance(notification, dict):
        problem = Unnormalisable("not a WeChat Pay notification")
    else:
        try:
            resource = wechatpay.decrypt_resource(
                notification.get("resource") or {}, state.settings.wechatpay_apiv3_key.get_secret_value()
            )
        except Unnormalisable as exc:
            problem = exc
        except wechatpay.CannotDecrypt as exc:  # our key, not their payload: WeChat Pay must retry
            problem = retry.RetryLater("cannot_decrypt", str(exc))

    if problem is not None:
        planned = wechatpay_events.WechatPlan(problem=problem)
    else:  # the order by out_trade_no, refunds by out_refund_no
        try:
            planned = await wechatpay_events.plan(session, notification or {}, resource, metrics=state.metrics)
        except (TypeError, ValueError, AttributeError) as exc:  # a field of an unexpected type: theirs, for good
            planned = wechatpay_events.WechatPlan(problem=Unnormalisable(f"{type(exc).__name__}: {exc}"))
    ids = [str(resource["transaction_id"])] if resource.get("transaction_id") else []
    outcome = await _record(session, state=state, outbox=outbox, provider="wechatpay", delivery_id=delivery_id,
                            payment_ids=ids, mapper=planned.mapper, payload=body, headers=headers)
    if outcome.status in ("accepted", "ignored"):  # the delivery is ours: its writes go with its events
        await planned.effects.apply(session)
    return outcome
