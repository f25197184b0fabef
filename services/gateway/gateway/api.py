"""The public API under /api/v1 and the operational views of the services behind the gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from gateway import engagement_guard, ops_access, read_guard
from gateway.auth.deps import CurrentPrincipal, OptionalPrincipal, rate_limit
from gateway.paths import ServicePath
from gateway.state import GatewayState, state_of
from gateway.upstream import UPSTREAMS, Upstreams, upstreams_of
from qunzhu_common import jsonbody
from qunzhu_common.errors import AppError, Forbidden, InvalidInput, Unauthorized, problem_response
from qunzhu_common.service import runtime_of

UpstreamsDep = Annotated[Upstreams, Depends(upstreams_of)]

api = APIRouter(prefix="/api/v1", tags=["communities"], dependencies=[Depends(rate_limit)])


@api.post(
    "/communities",
    status_code=201,
    summary="Create a community",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def create_community(request: Request, upstreams: UpstreamsDep, principal: CurrentPrincipal) -> Response:
    """Create a community (name, positioning, owner, entry policies); membership emits `community.created`.

    A member creates communities they own (`owner_id` defaults to them); platform operators for anyone.
    """
    body = await request.body()
    if principal.kind != "platform":
        if principal.kind != "member":
            raise Forbidden("API keys act inside their community; they cannot create communities")
        if principal.community_id is not None:
            raise Forbidden(f"this token acts only inside community {principal.community_id}; "
                            "log in with a person-wide login (e.g. Telegram) to create communities")
        try:
            data = jsonbody.loads(body or b"{}")
        except ValueError:
            raise InvalidInput("the body is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput("the body is not a JSON object")
        if data.setdefault("owner_id", principal.subject) != principal.subject:
            raise Forbidden("you can only create communities you own")
        body = json.dumps(data, ensure_ascii=False).encode()
    return await upstreams.forward("membership", request, "/communities", principal=principal, body=body)


@api.get("/communities", summary="List communities")
async def list_communities(request: Request, upstreams: UpstreamsDep, principal: OptionalPrincipal) -> Response:
    """Communities, oldest first (`owner_id`, `offset`, `limit`). Public: positioning is shown before joining."""
    return await upstreams.forward("membership", request, "/communities", principal=principal)


@api.get("/communities/{community_id}", summary="Get a community")
async def get_community(
    community_id: str, request: Request, upstreams: UpstreamsDep, principal: OptionalPrincipal
) -> Response:
    """One community by id. Public: its positioning and rules are meant to be read before joining."""
    return await upstreams.forward("membership", request, ServicePath.of("communities", community_id),
                                   principal=principal)


_PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _proxy_route(service: str) -> None:
    async def proxy(
        path: str, request: Request, upstreams: UpstreamsDep, principal: OptionalPrincipal
    ) -> Response:
        """Every route of the service, reached through the gateway (each is documented in /openapi.json).

        The gateway authenticates and passes the caller in a signed actor assertion; each service applies
        its own role rules to it. The gateway's guards below are an early reject, not the only wall:
        content's and engagement's reads inside a community need a role there (read_guard: posts are
        public, content's paywall decides), writes need a caller. The path checked is the path forwarded
        (one ServicePath; non-canonical paths were refused before routing).
        """
        target = ServicePath(path)
        # The guards read in a short session of their own, closed before the upstream call: no connection is
        # held while another service answers (issue #19; in embedded mode it may need the same database).
        async with runtime_of(request).read_session_maker() as session:
            if request.method == "GET":
                await read_guard.authorize_read(session, principal, service, target.text)
            elif principal is None:
                raise Unauthorized("send `Authorization: Bearer <token>` or `X-API-Key`")
            if service == "engagement" and request.method != "GET":
                assert principal is not None
                await engagement_guard.authorize_write(session, principal, target.text, await request.body())
        return await upstreams.forward(service, request, target, principal=principal)

    # One route per service, so the path never swallows the gateway's own /api/v1/communities/… routes.
    api.add_api_route(f"/{service}/{{path:path}}", proxy, methods=_PROXY_METHODS, include_in_schema=False,
                      name=f"proxy_{service}")


for _service in UPSTREAMS:
    _proxy_route(_service)


ops = APIRouter(prefix="/services", tags=["operations"])

@ops.get(
    "/{service}/{probe}",
    summary="A service's health, readiness or metrics",
    responses={403: {"description": "Metrics asked from outside the machine without the ops token"}},
)
async def service_probe(
    service: Literal["membership", "content", "engagement"],
    probe: Literal["healthz", "readyz", "metrics"],
    request: Request,
    upstreams: UpstreamsDep,
    state: Annotated[GatewayState, Depends(state_of)],
) -> Response:
    """Pass-through to a service's own probe (the only way to see them in embedded mode).

    Metrics carry business figures (revenue, members): they are answered to loopback callers, and to others
    only with `Authorization: Bearer <GATEWAY_OPS_TOKEN>` or the platform operator's `X-API-Key`.
    """
    if probe == "metrics":
        ops_access.require(request, state.settings)
    upstream = await upstreams.call(service, "GET", f"/{probe}")
    return Response(upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type"))

@ops.get("", summary="Readiness of every service")
async def services_status(upstreams: UpstreamsDep) -> JSONResponse:
    """Each service's /readyz, in one answer: 200 when all are ready, 503 otherwise."""

    async def probe(name: str) -> tuple[str, str]:
        try:
            response = await upstreams.call(name, "GET", "/readyz")
        except AppError:
            return name, "unreachable"
        return name, "ready" if response.status_code == 200 else "not ready"

    results = dict(await asyncio.gather(*(probe(name) for name in UPSTREAMS)))
    if all(state == "ready" for state in results.values()):
        return JSONResponse({"status": "ok", "services": results})
    return problem_response(
        status=503, title="Some services are not ready", slug="not-ready", services=results,
        headers={"Retry-After": "5"},
    )

