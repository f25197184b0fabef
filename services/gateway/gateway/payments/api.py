"""Payment provider webhooks: Stripe and WeChat Pay API v3."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.auth.deps import StateDep
from gateway.payments import service, wechatpay
from gateway.state import read_limited
from gateway.webhooks.api import _RESPONSES, WebhookAck, check_media_type
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/webhooks/payments", tags=["webhooks"])
_PAYMENT_RESPONSES = {k: v for k, v in _RESPONSES.items() if k != 404}


@lru_cache(maxsize=4)
def _certificates(pem: str) -> tuple:
    return tuple(wechatpay.load_certificates(pem))


@router.post("/stripe", response_model=WebhookAck, responses=_PAYMENT_RESPONSES)
async def stripe_webhook(request: Request, session: SessionDep, state: StateDep) -> JSONResponse:
    """A Stripe event, verified by `stripe.Webhook.construct_event` (300 s tolerance), deduplicated on its id."""
    check_media_type(request, "stripe")
    body = await read_limited(request, state.settings.webhook_max_body_bytes)
    outcome = await service.receive_stripe(
        session, state=state, outbox=state.runtime.outbox, body=body, signature=request.headers.get("stripe-signature")
    )
    return JSONResponse({"status": outcome.status, "events": outcome.events})


@router.post("/wechatpay", response_model=WebhookAck, responses=_PAYMENT_RESPONSES)
async def wechatpay_webhook(request: Request, session: SessionDep, state: StateDep) -> JSONResponse:
    """A WeChat Pay API v3 notification: platform-certificate signature, AES-256-GCM resource."""
    check_media_type(request, "wechatpay")
    body = await read_limited(request, state.settings.webhook_max_body_bytes)
    outcome = await service.receive_wechatpay(
        session, state=state, outbox=state.runtime.outbox, body=body, headers=dict(request.headers),
        certificates=_certificates(state.settings.wechatpay_platform_certificates),
    )
    return JSONResponse({"status": outcome.status, "events": outcome.events})
