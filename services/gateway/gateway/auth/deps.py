"""Annotated dependencies: the caller (401 when absent), rate limits per client, role checks."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.auth.principal import Principal, authenticate
from gateway.errors import TooManyRequests
from gateway.state import GatewayState, state_of
from qunzhu_common.deps import SessionDep
from qunzhu_common.errors import Forbidden, Unauthorized

StateDep = Annotated[GatewayState, Depends(state_of)]


async def optional_principal(
    session: SessionDep,
    state: StateDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal | None:
    return await authenticate(session, state=state, authorization=authorization, api_key=x_api_key)


async def require_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        error = Unauthorized("send `Authorization: Bearer <token>` or `X-API-Key`")
        error.headers["WWW-Authenticate"] = 'Bearer realm="qunzhu"'
        raise error
    return principal


async def require_platform(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if principal.kind != "platform":
        raise Forbidden("only platform operators may do this")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
PlatformOperator = Annotated[Principal, Depends(require_platform)]


def _client_key(request: Request) -> str:
    """The credential if any (hashed: keys must not sit in memory in clear), else the address."""
    credential = request.headers.get("authorization") or request.headers.get("x-api-key")
    if credential:
        return "cred:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
    return "ip:" + (request.client.host if request.client else "unknown")


async def rate_limit(request: Request, state: StateDep) -> None:
    """Token bucket per client; 429 with Retry-After when it is empty."""
    assert state.clients is not None
    wait = state.clients.take(_client_key(request))
    if wait > 0:
        state.metrics.rate_limited.inc()
        raise TooManyRequests("slow down", retry_after_s=state.clients.retry_after(wait))
