"""Ops replay of a quarantined (or retry-requested) delivery, after a fix.

The stored raw body is verified again with what it came with — a payment notification's signature headers, a
chat delivery's headers and query (and, for WeCom, the encrypted body as received) — through the same
pipeline as a delivery, so it is deduplicated as usual (the provider's own retry may have been accepted
meanwhile: then the replay is a `duplicate`). Only the freshness window is skipped: a replay of a delivery
hours or days old must not fail on its timestamp, and its signature still proves the sender sent exactly this.
"""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import QuarantinedWebhook, WebhookDelivery
from gateway.payments import service, wechatpay
from gateway.state import GatewayState
from gateway.webhooks import service as chat
from gateway.webhooks.adapters import ADAPTERS, Incoming
from gateway.webhooks.ingest import Outcome
from qunzhu_common.errors import Conflict, NotFound

PAYMENTS = ("stripe", "wechatpay")
FOREVER_S = 100 * 365 * 86400  # "no freshness window" for adapters that compare |now - timestamp|


def replayable(row: QuarantinedWebhook) -> bool:
    if not row.headers:
        return False
    return row.platform in PAYMENTS or (row.source.startswith("chat:") and "headers" in row.headers)


async def _release(session: AsyncSession, row: QuarantinedWebhook) -> None:
    """Take back what the first attempt took: its quarantine row and its claim of the delivery id (only a
    quarantined claim: an accepted one stays, so the replay is then answered `duplicate`)."""
    await session.execute(delete(WebhookDelivery).where(
        WebhookDelivery.source == row.source, WebhookDelivery.delivery_id == row.delivery_id,
        WebhookDelivery.outcome == "quarantined"))  # type: ignore[arg-type]
    await session.execute(delete(QuarantinedWebhook).where(QuarantinedWebhook.id == row.id))  # type: ignore[arg-type]
    await session.flush()


async def replay(*, state: GatewayState, quarantine_id: int) -> Outcome:
    """Re-verify and process one quarantined delivery; the quarantine row is consumed (a new one is written
    if it is still unprocessable). WebhookUnauthorized (401) if the stored signature fails: nothing changes.

    It uses sessions of its own, never the request's: a chat delivery is recorded by the group committer,
    which needs the database while the replay waits for it (SQLite has one connection)."""
    sessions = state.runtime.session_maker
    async with sessions() as session:
        row = await session.get(QuarantinedWebhook, quarantine_id)
    if row is None:
        raise NotFound(f"no quarantined delivery {quarantine_id}")
    if not replayable(row):
        raise Conflict("this delivery was quarantined before what verifies it was kept with it: it cannot be "
                       "verified again, so it is not replayed", platform=row.platform)
    if row.platform in PAYMENTS:
        async with sessions() as session, session.begin():  # the release and the effects commit together
            outcome = await _payment(session, state, row)
    else:
        outcome = await _chat(state, row)
    state.metrics.replays.labels(row.platform, outcome.status).inc()
    return outcome


async def _payment(session: AsyncSession, state: GatewayState, row: QuarantinedWebhook) -> Outcome:
    headers, body = dict(row.headers or {}), bytes(row.payload)
    await _release(session, row)
    outbox = state.runtime.outbox
    if row.platform == "stripe":
        return await service.receive_stripe(session, state=state, outbox=outbox, body=body,
                                            signature=headers.get("stripe-signature"), tolerance_s=None)
    return await service.receive_wechatpay(session, state=state, outbox=outbox, body=body, headers=headers,
                                           certificates=wechatpay.platform_keys(state.settings), tolerance_s=None)


async def _chat(state: GatewayState, row: QuarantinedWebhook) -> Outcome:
    """Chat deliveries are recorded by the group committer in its own transaction: the release commits first
    (in its own session), after the stored delivery verified again, so a refused replay changes nothing."""
    material = dict(row.headers or {})
    try:
        body = base64.b64decode(material["body"]) if "body" in material else bytes(row.payload)
    except (binascii.Error, ValueError, TypeError):
        raise Conflict("the stored body of this delivery is unreadable") from None
    connector = await chat.connector_view(state=state, connector_id=row.source.removeprefix("chat:"))
    if connector.platform != row.platform:
        raise Conflict(f"connector {connector.id} is {connector.platform} now, the delivery was {row.platform}")
    incoming = Incoming({str(k).lower(): str(v) for k, v in (material.get("headers") or {}).items()},
                        {str(k): str(v) for k, v in (material.get("query") or {}).items()}, body)
    ADAPTERS[connector.platform].verify(incoming, connector, tolerance_s=FOREVER_S)  # 401 before any change
    async with state.runtime.session_maker() as own, own.begin():
        fresh = await own.get(QuarantinedWebhook, row.id)
        if fresh is None:
            raise NotFound(f"no quarantined delivery {row.id}")  # replayed meanwhile
        await _release(own, fresh)
    return await chat.receive_chat(state=state, outbox=state.runtime.outbox, connector=connector, incoming=incoming,
                                   tolerance_s=FOREVER_S)
