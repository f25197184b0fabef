"""Annotated dependencies: the caller (401 when absent), rate limits per client, role checks."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated

from fastapi import Depends, Request

from gateway.auth.principal import Principal, authenticate
from gateway.errors import TooManyRequests
from gateway.state import GatewayState, state_of
from qunzhu_common.errors import AppError, Forbidden, Unauthorized

StateDep = Annotated[GatewayState, Depends(state_of)]


async def optional_principal(request: Request, state: StateDep) -> Principal | None:
    """The authenticated caller, None when no credential was sent; 401 for a wrong one (checked once per
    request: the rate limit, which runs first, already did)."""
    return await _authenticated(request, state)


async def _authenticated(request: Request, state: GatewayState) -> Principal | None:
    if not hasattr(request.state, "principal_outcome"):
        # Its own short read (the read pool on SQLite): no connection stays checked out for the rest of the
        # request, which may call a service upstream (issue #19).
        async with state.runtime.read_session_maker() as session:
            try:
                request.state.principal_outcome = await authenticate(
                    session, state=state, authorization=request.headers.get("authorization"),
                    api_key=request.headers.get("x-api-key"), on_behalf_of=request.headers.get("x-on-behalf-of"),
                )
            except AppError as exc:
                request.state.principal_outcome = exc
    outcome = request.state.principal_outcome
    if isinstance(outcome, AppError):
        raise outcome
    return outcome  # type: ignore[no-any-return]


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


def client_address(request: Request, trusted_proxies: list[IPv4Network | IPv6Network]) -> str:
    """The caller's address: the peer, or — only when the peer is a trusted proxy — the right-most
    X-Forwarded-For entry that is not itself a trusted proxy (entries further left are the client's word)."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies or not _in(peer, trusted_proxies):
        return peer
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if not _in(hop, trusted_proxies):
            return hop
    return peer


def _in(address: str, networks: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


async def rate_limit(request: Request, state: StateDep) -> None:
    """Token bucket per client; 429 with Retry-After when it is empty.

    The bucket is the authenticated principal's only once its credential checked out; a wrong, expired or
    absent credential counts against the client's address, so sending a fresh random key per request
    buys nothing.
    """
    assert state.clients is not None
    try:
        principal = await _authenticated(request, state)
    except AppError:
        principal = None
    if principal is not None:
        key = f"principal:{principal.via}" if principal.via else f"principal:{principal.kind}:{principal.subject}"
    else:
        key = "ip:" + client_address(request, state.settings.trusted_proxies)
    wait = state.clients.take(key)
    if wait > 0:
        state.metrics.rate_limited.inc()
        raise TooManyRequests("slow down", retry_after_s=state.clients.retry_after(wait))
