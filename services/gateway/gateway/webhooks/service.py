"""The chat webhook pipeline: connector → verify → normalise → dedupe + outbox (or quarantine)."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.chatdir.groups import register_created_groups
from gateway.errors import TooManyRequests, WebhookUnauthorized
from gateway.models import QuarantinedWebhook
from gateway.ratelimit import TokenBuckets
from gateway.state import GatewayState
from gateway.webhooks import door
from gateway.webhooks.adapters import ADAPTERS, ConnectorView, Incoming, body_digest, open_wecom
from gateway.webhooks.batch import Delivery
from gateway.webhooks.commands import Unnormalisable
from gateway.webhooks.ingest import MAX_DELIVERY_ID, Outcome, stage_chat_events
from qunzhu_common.context import current_correlation_id
from qunzhu_common.outbox import OutboxWriter

log = logging.getLogger(__name__)


async def connector_view(*, state: GatewayState, connector_id: str) -> ConnectorView:
    """The connector, from the cache when fresh (no database round trip per delivery)."""
    view = state.connectors.cached(connector_id)
    if view is not None:
        return view
    async with state.runtime.read_session_maker() as session:  # never waits for the writer (#19)
        return await state.connectors.get(session, box=state.box, connector_id=connector_id)


# Headers never needed to verify a chat delivery again, and not to be kept with it.
_NOT_KEPT = frozenset({"authorization", "cookie", "x-api-key", "host", "content-length", "connection"})


def replay_material(incoming: Incoming, verified_payload: bytes) -> dict:
    """What re-verifying a quarantined delivery needs: its headers, query and, when the stored payload is not
    the body as received (WeCom: decrypted), that body (base64)."""
    material: dict = {"headers": {k: v for k, v in incoming.headers.items() if k.lower() not in _NOT_KEPT},
                      "query": dict(incoming.query)}
    if incoming.body != verified_payload:
        material["body"] = base64.b64encode(incoming.body).decode()
    return material


async def receive_chat(
    *, state: GatewayState, outbox: OutboxWriter, connector: ConnectorView, incoming: Incoming,
    tolerance_s: int | None = None, entry_policies: door.EntryPolicies | None = None,
) -> Outcome:
    """Verify and normalise outside any transaction, then record the delivery in the next group commit.
    `tolerance_s` overrides the freshness window (an ops replay of a stored delivery)."""
    adapter = ADAPTERS[connector.platform]
    try:
        verified = adapter.verify(incoming, connector, tolerance_s=tolerance_s or state.settings.webhook_tolerance_s)
    except WebhookUnauthorized as exc:
        state.metrics.refused(connector.platform, exc.reason)
        raise
    if verified.reply is not None:  # a heartbeat or a URL check: answered, nothing recorded
        state.metrics.webhooks.labels(connector.platform, "answered").inc()
        return Outcome("answered", reply=verified.reply)
    # Counted once verified: a flood of forged requests costs a signature check each and cannot use up
    # the platform's own allowance; a verified flood (a bridge in a loop) is held off before any write.
    wait = state.deliveries.take(connector.id) if state.deliveries is not None else 0.0
    if wait:
        state.metrics.webhooks.labels(connector.platform, "rate_limited").inc()
        raise TooManyRequests(f"connector {connector.id} is over {state.settings.webhook_rate_per_s:g} deliveries/s",
                              retry_after_s=TokenBuckets.retry_after(wait))
    delivery_id = verified.delivery_id or adapter.delivery_id(verified.payload)
    if len(delivery_id) > MAX_DELIVERY_ID:  # an absurd platform id: the body's digest still deduplicates
        delivery_id = body_digest(verified.payload)
    source = f"chat:{connector.id}"
    try:
        raw = adapter.normalise(verified.payload, connector)
        connector = await register_created_groups(state, connector, raw)
        staged = stage_chat_events(
            raw, registry=outbox.registry, identity_platform=connector.identity_platform, groups=connector.groups,
            delivery_id=delivery_id,
        )
        decision = None
        if adapter.join_request is not None and (ask := adapter.join_request(verified.payload, connector)):
            try:
                decision = await door.decide(state.settings, state.runtime.read_session_maker, outbox.registry,
                                             connector, ask, entry_policies)
                if decision.staged is not None:  # None: the community's chat join policy is ignore
                    staged = [*staged, decision.staged]
            except door.Undecided:
                log.warning("join request %s left undecided: membership did not answer", delivery_id)
                state.metrics.join_requests.labels(connector.platform, "undecided", "membership_unavailable").inc()
    except Unnormalisable as exc:
        reason, staged, decision = str(exc), [], None
    except Exception as exc:  # noqa: BLE001 - a verified payload that breaks staging is quarantined, never a 500
        log.warning("unexpected failure normalising delivery %s of %s", delivery_id, source, exc_info=True)
        reason, staged, decision = str(Unnormalisable(f"{type(exc).__name__}: {exc}")), [], None
    else:
        reason = None

    assert state.ingest is not None
    outcome: Outcome = await state.ingest.submit(Delivery(
        source=source, platform=connector.platform, delivery_id=delivery_id, events=staged,
        quarantine_reason=reason, payload=verified.payload if reason is not None else b"",
        correlation_id=current_correlation_id(),
        replay=replay_material(incoming, verified.payload) if reason is not None else None,
    ))
    state.metrics.delivered(connector.platform, outcome.status,
                            [event.type for event in staged] if outcome.status == "accepted" else [])
    if decision is not None and outcome.status in ("accepted", "ignored"):  # ignored: left undecided
        state.metrics.join_requests.labels(connector.platform, decision.outcome, decision.why).inc()
    if adapter.reply is not None:
        outcome = replace(outcome, reply=adapter.reply(outcome.status))
    return outcome


def wecom_echo(*, state: GatewayState, connector: ConnectorView, query: dict[str, str]) -> bytes:
    """WeCom's URL check: the echostr is signed and encrypted like a callback; answer its plaintext."""
    try:
        return open_wecom(query, query.get("echostr", ""), connector, tolerance_s=state.settings.webhook_tolerance_s)
    except WebhookUnauthorized as exc:
        state.metrics.refused("wecom", exc.reason)
        raise


async def list_quarantine(
    session: AsyncSession, *, source: str | None, offset: int, limit: int
) -> tuple[list[QuarantinedWebhook], int]:
    query = select(QuarantinedWebhook)
    count = select(func.count()).select_from(QuarantinedWebhook)
    if source is not None:
        query = query.where(QuarantinedWebhook.source == source)
        count = count.where(QuarantinedWebhook.source == source)
    rows = await session.execute(query.order_by(QuarantinedWebhook.id.desc()).offset(offset).limit(limit))
    return list(rows.scalars().all()), int(await session.scalar(count) or 0)
