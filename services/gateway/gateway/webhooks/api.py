"""Webhook routes: chat platforms in, and the quarantine view for ops."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.auth.deps import PlatformOperator, StateDep
from gateway.errors import PayloadTooLarge, UnsupportedMediaType
from gateway.paths import ServicePath
from gateway.state import GatewayState, read_limited
from gateway.webhooks import service
from gateway.webhooks.adapters import Incoming
from qunzhu_common.deps import SessionDep
from qunzhu_common.errors import AppError

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_RESPONSES = {
    401: {"description": "Missing or forged signature, wrong secret, timestamp outside the tolerance"},
    404: {"description": "Unknown connector"},
    413: {"description": "Body over the limit (1 MiB)"},
    415: {"description": "A Content-Type the provider never sends (JSON; WeCom: XML)"},
}
# What each provider declares its body as. No Content-Type at all is accepted (some bridges omit it).
MEDIA_TYPES = {
    "generic": ("application/json",), "telegram": ("application/json",), "stripe": ("application/json",),
    "wechatpay": ("application/json",), "wecom": ("text/xml", "application/xml"),
    "onebot": ("application/json",), "qq": ("application/json",),
}


def media_type_refusal(declared: str | None, provider: str) -> UnsupportedMediaType | None:
    """The 415 for a body declared as something this provider never sends; None when it may be read."""
    if declared is None:
        return None
    media = declared.partition(";")[0].strip().lower()
    if media not in MEDIA_TYPES[provider]:
        return UnsupportedMediaType(f"{provider} webhooks are {' or '.join(MEDIA_TYPES[provider])}, not {media!r}")
    return None


def check_media_type(request: Request, provider: str) -> None:
    """415 for a body declared as something this provider never sends, before anything is read."""
    refusal = media_type_refusal(request.headers.get("content-type"), provider)
    if refusal is not None:
        raise refusal


def entry_policies_of(app: Any):
    """How the door (a QQ join request) learns a community's public entry policies from membership."""

    async def ask(community_id: str) -> list[str] | None:
        upstreams = getattr(app.state, "upstreams", None)
        if upstreams is None:
            return None
        try:
            response = await upstreams.call("membership", "GET", ServicePath.of("communities", community_id).encoded)
        except AppError:  # unavailable
            return None
        if response.status_code >= 500:
            return None
        try:
            policies = response.json().get("entry_policies") if response.is_success else []
        except (ValueError, AttributeError):
            return None
        return [str(p) for p in policies] if isinstance(policies, list) else []

    return ask


class WebhookAck(BaseModel):
    status: str  # accepted, ignored, quarantined, duplicate
    events: int = 0


@router.post("/chat/{connector_id}", response_model=WebhookAck, responses={
    **_RESPONSES, 429: {"description": "The connector is over its delivery rate; retry after Retry-After seconds"},
    204: {"description": "A OneBot 11 meta event (heartbeat, lifecycle): nothing recorded"}})
async def chat_webhook(connector_id: str, request: Request) -> Response:
    """A chat platform's delivery (Standard Webhooks JSON, Telegram update, WeCom callback, OneBot 11 event
    or QQ bot callback; QQ's are answered `{"op": 12}`, its URL check op 13 with the signed plain_token).

    Answered 200 only after its events (or its quarantine row) are committed; a replayed delivery id
    is answered 200 `duplicate` with no side effect. Deliveries arriving together share one commit.
    WeCom callbacks are answered 200 with an empty body, as WeCom documents (no passive reply).
    """
    # Served by gateway.webhooks.asgi.ChatWebhookRoute ahead of FastAPI (issue #19); this route is what the
    # OpenAPI document describes, and it answers what that route hands on (e.g. a non-canonical raw path).
    state: GatewayState = request.app.state.gateway
    limit = state.settings.webhook_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    connector = await service.connector_view(state=state, connector_id=connector_id)
    check_media_type(request, connector.platform)
    incoming = Incoming(dict(request.headers), dict(request.query_params), await read_limited(request, limit))
    outcome = await service.receive_chat(state=state, outbox=state.runtime.outbox, connector=connector,
                                         incoming=incoming, entry_policies=entry_policies_of(request.app))
    if outcome.reply is not None:  # the platform's own answer: OneBot heartbeats 204, QQ's op 12 / op 13
        return Response(outcome.reply.body, status_code=outcome.reply.status_code, media_type=outcome.reply.media_type)
    if connector.platform == "wecom":  # WeCom documents an empty body when there is no passive reply
        return Response(status_code=200)
    return JSONResponse({"status": outcome.status, "events": outcome.events})


@router.get("/chat/{connector_id}", response_class=Response, responses=_RESPONSES)
async def chat_webhook_url_check(connector_id: str, request: Request, state: StateDep) -> Response:
    """WeCom's URL verification: `msg_signature`, `timestamp`, `nonce`, `echostr` → the decrypted echostr."""
    connector = await service.connector_view(state=state, connector_id=connector_id)
    if connector.platform != "wecom":
        return Response(status_code=405)
    return Response(service.wecom_echo(state=state, connector=connector, query=dict(request.query_params)),
                    media_type="text/plain")


class QuarantinedPublic(BaseModel):
    id: int
    source: str
    platform: str
    delivery_id: str
    reason: str
    payload: str
    received_at: datetime
    retry_requested: bool = False  # the provider was asked to retry; kept in case it gives up
    replayable: bool = False  # kept with what verifies it again (signature headers; a chat delivery's query)


class QuarantinePage(BaseModel):
    data: list[QuarantinedPublic]
    count: int


ops = APIRouter(prefix="/api/v1/ops", tags=["operations"])


@ops.get("/quarantine", response_model=QuarantinePage)
async def list_quarantined(
    session: SessionDep,
    _operator: PlatformOperator,
    source: Annotated[str | None, Query(max_length=100, description="chat:<connector id>, stripe, wechatpay")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> QuarantinePage:
    """Verified payloads that could not be normalised, newest first, with the reason (platform operators)."""
    from gateway.payments.replay import replayable  # the payment pipeline imports this module's helpers

    rows, count = await service.list_quarantine(session, source=source, offset=offset, limit=limit)
    return QuarantinePage(data=[
        QuarantinedPublic(id=r.id or 0, source=r.source, platform=r.platform, delivery_id=r.delivery_id,
                          reason=r.reason, payload=bytes(r.payload).decode("utf-8", "replace"),
                          received_at=r.received_at, retry_requested=bool(r.retry_requested),
                          replayable=replayable(r))
        for r in rows
    ], count=count)


class ReplayAnswer(BaseModel):
    status: str  # accepted, ignored, duplicate, quarantined (again), retry (still not processable)
    events: int = 0
    reason: str = ""


@ops.post("/quarantine/{quarantine_id}/replay", response_model=ReplayAnswer, responses={
    401: {"description": "The stored body no longer verifies (e.g. the certificate or secret was removed)"},
    404: {"description": "No such quarantined delivery"},
    409: {"description": "Kept without what verifies it again (quarantined before that was kept)"}})
async def replay_quarantined(
    quarantine_id: Annotated[int, Path(ge=1, le=2**31 - 1)], state: StateDep, _operator: PlatformOperator,
) -> ReplayAnswer:
    """Replay a quarantined delivery after a fix (platform operators): a payment notification or a chat delivery.

    Its stored raw body is verified again with what it came with — signature headers, a chat delivery's
    query — the freshness window skipped, the signature not; then processed like a delivery, deduplicated as
    usual: one the sender's own retry already delivered answers `duplicate`. The row is consumed; a
    still-unprocessable one is quarantined again (`quarantined`) or kept for retry (`retry`) with the new
    reason. A stored body that no longer verifies is 401 and stays."""
    from gateway.payments.replay import replay  # the payment pipeline imports this module's helpers

    outcome = await replay(state=state, quarantine_id=quarantine_id)
    return ReplayAnswer(status=outcome.status, events=outcome.events, reason=outcome.reason)

