"""Ops replay of a quarantined (or retry-requested) payment notification, after a fix.

The stored raw body is verified again with its stored signature headers, through the same pipeline as a
delivery, so it is deduplicated as usual (the provider's own retry may have been accepted meanwhile: then
the replay is a `duplicate`). Only the freshness window is skipped: a replay of a notification hours or days
old must not fail on its timestamp, and its signature still proves WeChat Pay / Stripe sent exactly this body.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import QuarantinedWebhook, WebhookDelivery
from gateway.payments import service, wechatpay
from gateway.state import GatewayState
from gateway.webhooks.ingest import Outcome
from qunzhu_common.errors import Conflict, NotFound

REPLAYABLE = ("stripe", "wechatpay")


async def replay(session: AsyncSession, *, state: GatewayState, quarantine_id: int) -> Outcome:
    """Re-verify and process one quarantined payment notification; the quarantine row is consumed (a new one
    is written if it is still unprocessable). WebhookUnauthorized (401) if the stored signature fails."""
    row = await session.get(QuarantinedWebhook, quarantine_id)
    if row is None:
        raise NotFound(f"no quarantined delivery {quarantine_id}")
    if row.platform not in REPLAYABLE:
        raise Conflict(f"{row.platform} deliveries cannot be replayed: only payment notifications are "
                       "(their signature covers the stored body)", platform=row.platform)
    if not row.headers:
        raise Conflict("this delivery was quarantined before its signature headers were kept: it cannot be "
                       "verified again, so it is not replayed")
    headers, body = dict(row.headers), bytes(row.payload)
    # Release what the first attempt took: its quarantine row and its claim of the delivery id (only a
    # quarantined claim: an accepted one stays, so the replay is then answered `duplicate`).
    await session.execute(delete(WebhookDelivery).where(
        WebhookDelivery.source == row.source, WebhookDelivery.delivery_id == row.delivery_id,
        WebhookDelivery.outcome == "quarantined"))  # type: ignore[arg-type]
    await session.delete(row)
    await session.flush()
    outbox = state.runtime.outbox
    if row.platform == "stripe":
        outcome = await service.receive_stripe(session, state=state, outbox=outbox, body=body,
                                               signature=headers.get("stripe-signature"), tolerance_s=None)
    else:
        outcome = await service.receive_wechatpay(session, state=state, outbox=outbox, body=body, headers=headers,
                                                  certificates=wechatpay.platform_keys(state.settings),
                                                  tolerance_s=None)
    state.metrics.replays.labels(row.platform, outcome.status).inc()
    return outcome
