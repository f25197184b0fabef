"""Payment provider webhooks: Stripe and WeChat Pay API v3."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.auth.deps import StateDep
from gateway.payments import service, wechatpay
from gateway.state import read_limited
from gateway.webhooks.api import _RESPONSES, WebhookAck, check_media_type
from gateway.webhooks.ingest import Outcome
from qunzhu_common.deps import SessionDep
from qunzhu_common.errors import AppError, problem_response

router = APIRouter(prefix="/webhooks/payments", tags=["webhooks"])
_PAYMENT_RESPONSES = {k: v for k, v in _RESPONSES.items() if k != 404} | {
    503: {"description": "Authentic but not processable yet (cannot decrypt, order not found yet): the provider "
                         "retries; kept for ops meanwhile. WeChat Pay's problem carries code FAIL and message"},
}


def answer(outcome: Outcome, *, wechatpay_fail: bool = False) -> JSONResponse:
    """200 with the outcome; `retry` is a 503 problem (committed: the kept copy stays) so the provider retries."""
    if outcome.status == "retry":
        extra = {"code": "FAIL", "message": outcome.reason} if wechatpay_fail else {}
        return problem_response(status=503, title="Retry later", slug="retry-later", detail=outcome.reason,
                                headers={"Retry-After": "60"}, **extra)
    return JSONResponse({"status": outcome.status, "events": outcome.events})


@router.post("/stripe", response_model=WebhookAck, responses=_PAYMENT_RESPONSES)
async def stripe_webhook(request: Request, session: SessionDep, state: StateDep) -> JSONResponse:
    """A Stripe event, verified by `stripe.Webhook.construct_event` (300 s tolerance), deduplicated on its id."""
    check_media_type(request, "stripe")
    body = await read_limited(request, state.settings.webhook_max_body_bytes)
    outcome = await service.receive_stripe(
        session, state=state, outbox=state.runtime.outbox, body=body, signature=request.headers.get("stripe-signature")
    )
    return answer(outcome)


@router.post("/wechatpay", response_model=WebhookAck, responses=_PAYMENT_RESPONSES)
async def wechatpay_webhook(request: Request, session: SessionDep, state: StateDep) -> JSONResponse:
    """A WeChat Pay API v3 notification: signed with a platform certificate or the WeChat Pay public key
    (`Wechatpay-Serial: PUB_KEY_ID_…`), resource encrypted with AES-256-GCM under the APIv3 key.

    Every refusal is a problem that also carries WeChat Pay's own answer members `code: FAIL` and `message`."""
    try:
        check_media_type(request, "wechatpay")
        body = await read_limited(request, state.settings.webhook_max_body_bytes)
        outcome = await service.receive_wechatpay(
            session, state=state, outbox=state.runtime.outbox, body=body, headers=dict(request.headers),
            certificates=wechatpay.platform_keys(state.settings),
        )
    except AppError as exc:
        exc.extra.setdefault("code", "FAIL")
        exc.extra.setdefault("message", exc.detail)
        raise
    return answer(outcome, wechatpay_fail=True)
