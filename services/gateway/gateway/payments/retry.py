"""Retry-worthy notifications: authentic, but Qunzhu cannot process them yet because of its own state or
configuration (the APIv3 key does not open the resource; the order or payment is not known yet).

They are answered 503 so the provider retries (WeChat Pay retries for about a day, Stripe for three), counted
in `qunzhu_gateway_webhook_retries_requested_total{platform,reason}` (alert: WebhookRetriesRequested), and
kept once in the quarantine table with `retry_requested` and their signature headers: if the provider gives up
before the fix, ops replay them (POST /api/v1/ops/quarantine/{id}/replay). The delivery id is not claimed,
so the provider's own retry, once it succeeds, is processed as usual and removes the kept copy.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import QuarantinedWebhook
from gateway.webhooks.ingest import Outcome

REASONS = ("cannot_decrypt", "order_unknown", "payment_unknown")


class RetryLater(Exception):
    """Raised while mapping a verified notification: answer 503, keep it, let the provider retry."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


async def keep(
    session: AsyncSession, *, provider: str, delivery_id: str, payload: bytes, headers: Mapping[str, str],
    error: RetryLater,
) -> Outcome:
    """Keep one copy per delivery id (a provider retries many times) and answer `retry`."""
    kept = await session.scalar(select(QuarantinedWebhook.id).where(
        QuarantinedWebhook.source == provider, QuarantinedWebhook.delivery_id == delivery_id,
        QuarantinedWebhook.retry_requested.is_(True)).limit(1))  # type: ignore[union-attr,attr-defined]
    if kept is None:
        session.add(QuarantinedWebhook(
            source=provider, platform=provider, delivery_id=delivery_id, payload=payload, headers=dict(headers),
            reason=f"retry requested ({error.reason}): {error.detail}"[:2000], retry_requested=True))
        await session.flush()
    return Outcome("retry", reason=error.detail)


async def forget(session: AsyncSession, *, provider: str, delivery_id: str) -> None:
    """The delivery went through (a retry, a replay): its kept copy is no longer needed."""
    await session.execute(delete(QuarantinedWebhook).where(
        QuarantinedWebhook.source == provider, QuarantinedWebhook.delivery_id == delivery_id,
        QuarantinedWebhook.retry_requested.is_(True)))  # type: ignore[union-attr,attr-defined]
