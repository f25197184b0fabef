"""Login routes (one-time code, Telegram Login Widget, WeCom web login) and API keys for bots and operators."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

import httpx
from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.auth import service, tokens
from gateway.auth.deps import CurrentPrincipal, StateDep, rate_limit
from gateway.auth.principal import require_role
from gateway.errors import InvalidCredentials
from qunzhu_common.deps import SessionDep
from qunzhu_common.errors import NotFound, ServiceUnavailable, problem_response
from qunzhu_common.events.contracts.identity import PersonId

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["auth"], dependencies=[Depends(rate_limit)])
_UNSENT_REASONS = {
    "no_connector": "no_connector (the community has no telegram, generic, wecom or onebot connector for this "
                    "person's platform)",
    "blacklisted": "blacklisted (the person is blacklisted in this community)",
    "too_many_live_codes": "too_many_live_codes (the person already has the maximum of unused, unexpired codes)",
}
PersonIdStr = PersonId  # as every event names a person: no whitespace or control characters


class CodeRequest(BaseModel):
    community_id: str = Field(min_length=1, max_length=100)
    member_id: PersonIdStr


class CodeLogin(BaseModel):
    member_id: PersonIdStr
    code: str = Field(min_length=4, max_length=12)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    subject: str
    community_id: str | None = Field(
        default=None, description="The one community this token acts in (a code delivered by its connector); "
        "null: person-wide (a platform-verified login).")


@router.post("/auth/codes", status_code=status.HTTP_202_ACCEPTED, response_class=Response)
async def request_login_code(body: CodeRequest, session: SessionDep, state: StateDep) -> Response:
    """Ask the community's bot to send a one-time login code to the person's private chat (always 202).

    The person need not be a member yet. The token the code gives acts in this community only: whoever
    runs the community's connector could read the code, so it proves nothing elsewhere."""
    outcome = await service.send_login_code(session, state=state, community_id=body.community_id,
                                            member_id=body.member_id)
    state.metrics.login_codes.labels(outcome).inc()
    if outcome != "sent":
        # The caller is told nothing (no membership oracle); whoever runs the platform is.
        log.warning("no login code sent to %s for community %s: %s", body.member_id, body.community_id,
                    _UNSENT_REASONS.get(outcome, outcome))
    return Response(status_code=202)


@router.post("/auth/token", response_model=TokenResponse, responses={401: {"description": "Wrong or used code"}})
async def login_with_code(body: CodeLogin, session: SessionDep, state: StateDep) -> JSONResponse:
    """Exchange a one-time code for a member token (JWT) scoped to the community that delivered the code
    (`community_id` in the answer); elsewhere it gets 403."""
    redeemed = await service.redeem_login_code(session, state=state, member_id=body.member_id, code=body.code)
    if redeemed is None:
        state.metrics.logins.labels("code", "refused").inc()
        # A response, not an exception: the failed attempt must be committed, or guessing would be free.
        return problem_response(status=401, title="Invalid credentials", slug="invalid-credentials",
                                detail="wrong, expired or already used code")
    state.metrics.logins.labels("code", "ok").inc()
    return _token(state, body.member_id, "otp", community_id=redeemed.community_id)


@router.post("/auth/telegram", response_model=TokenResponse, responses={401: {"description": "Bad widget data"}})
async def login_with_telegram(data: dict[str, str | int], state: StateDep) -> JSONResponse:
    """Exchange Telegram Login Widget data (id, first_name, …, auth_date, hash) for a person-wide member
    token (Telegram itself vouches for the person)."""
    try:
        subject = service.check_telegram_login(
            {k: str(v) for k, v in data.items()}, bot_token=state.settings.telegram_login_bot_token.get_secret_value(),
            max_age_s=state.settings.telegram_login_max_age_s,
        )
    except (ValueError, KeyError):
        state.metrics.logins.labels("telegram", "refused").inc()
        raise InvalidCredentials("the Telegram login data is not valid") from None
    state.metrics.logins.labels("telegram", "ok").inc()
    return _token(state, subject, "telegram")


class WecomLogin(BaseModel):
    code: str = Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_\-.~]+$",
                      description="The `code` WeCom's OAuth page redirected back with (used once, 5 minutes).")


@router.post("/auth/wecom", response_model=TokenResponse, responses={
    401: {"description": "WeCom does not vouch for anyone with this code"},
    404: {"description": "WeCom login is not configured"},
    503: {"description": "WeCom could not be reached; try again"}})
async def login_with_wecom(body: WecomLogin, state: StateDep) -> JSONResponse:
    """Exchange a WeCom OAuth `code` (web login through the enterprise's self-built app) for a person-wide
    member token for `wecom:<userid>`: WeCom itself vouches for the person. Configured with
    GATEWAY_WECOM_LOGIN_CORP_ID and GATEWAY_WECOM_LOGIN_SECRET."""
    from gateway.auth import wecom

    settings = state.settings
    secret = settings.wecom_login_secret.get_secret_value()
    if not settings.wecom_login_corp_id or not secret:
        raise NotFound("WeCom login is not configured here")
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            subject = await wecom.person_for_code(client, base=settings.wecom_api_base,
                                                  corp_id=settings.wecom_login_corp_id, secret=secret, code=body.code)
    except wecom.WecomUnavailable as exc:
        state.metrics.logins.labels("wecom", "unavailable").inc()
        raise ServiceUnavailable(f"WeCom could not be reached ({exc}); try again", service="wecom") from None
    except wecom.WecomError as exc:
        state.metrics.logins.labels("wecom", "refused").inc()
        log.info("WeCom login refused: %s", exc)
        raise InvalidCredentials("WeCom does not vouch for anyone with this code") from None
    state.metrics.logins.labels("wecom", "ok").inc()
    return _token(state, subject, "wecom")


def _token(state, subject: str, method: str, *, community_id: str | None = None) -> JSONResponse:
    token, ttl = tokens.issue(state.jwt_key, state.settings, subject=subject, method=method,
                              community_id=community_id)
    return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": ttl, "subject": subject,
                         "community_id": community_id}, headers={"Cache-Control": "no-store"})


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["bot", "operator"]
    role: Literal["admin", "guest", "member"] = "admin"


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    kind: str
    role: str
    community_id: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="Shown once; only its hash is kept.")


@router.post("/communities/{community_id}/api-keys", status_code=201, response_model=ApiKeyCreated, tags=["api keys"])
async def create_api_key(
    community_id: str, body: ApiKeyCreate, session: SessionDep, principal: CurrentPrincipal
) -> ApiKeyCreated:
    """Create an API key for a bot or an operator of the community (owner only); the key is shown once."""
    await require_role(session, principal, community_id, "owner")
    row, key = await service.create_api_key(session, community_id=community_id, name=body.name, kind=body.kind,
                                            role=body.role, created_by=principal.recorded_as)
    return ApiKeyCreated(**row.model_dump(exclude={"secret_hash"}), key=key)


@router.get("/communities/{community_id}/api-keys", response_model=list[ApiKeyPublic], tags=["api keys"])
async def list_api_keys(community_id: str, session: SessionDep, principal: CurrentPrincipal) -> list[ApiKeyPublic]:
    """The community's API keys, without their secrets (owner only)."""
    await require_role(session, principal, community_id, "owner")
    rows = await service.list_api_keys(session, community_id=community_id)
    return [ApiKeyPublic(**r.model_dump(exclude={"secret_hash"})) for r in rows]


@router.delete("/communities/{community_id}/api-keys/{key_id}", status_code=204, response_class=Response,
               tags=["api keys"])
async def revoke_api_key(community_id: str, key_id: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Revoke an API key at once (owner only)."""
    await require_role(session, principal, community_id, "owner")
    if not await service.revoke_api_key(session, community_id=community_id, key_id=key_id):
        raise NotFound(f"API key {key_id} does not exist")
    return Response(status_code=204)
