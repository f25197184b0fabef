"""The public API under /api/v1 and the operational views of the services behind the gateway."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from qunzhu_common.errors import AppError, problem_response

from gateway.upstream import UPSTREAMS, Upstreams, upstreams_of

UpstreamsDep = Annotated[Upstreams, Depends(upstreams_of)]

api = APIRouter(prefix="/api/v1", tags=["communities"])

@api.post(
    "/communities",
    status_code=201,
    summary="Create a community",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def create_community(request: Request, upstreams: UpstreamsDep) -> Response:
    """Create a community (name, positioning, owner, entry policies); membership emits `community.created`."""
    return await upstreams.forward("membership", request, "/communities")

@api.get("/communities", summary="List communities")
async def list_communities(request: Request, upstreams: UpstreamsDep) -> Response:
    """Communities, oldest first (`owner_id`, `offset`, `limit`)."""
    return await upstreams.forward("membership", request, "/communities")

@api.get("/communities/{community_id}", summary="Get a community")
async def get_community(community_id: str, request: Request, upstreams: UpstreamsDep) -> Response:
    """One community by id."""
    return await upstreams.forward("membership", request, f"/communities/{community_id}")

ops = APIRouter(prefix="/services", tags=["operations"])

@ops.get("/{service}/{probe}", summary="A service's health, readiness or metrics")
async def service_probe(
    service: Literal["membership", "content", "engagement"],
    probe: Literal["healthz", "readyz", "metrics"],
    upstreams: UpstreamsDep,
) -> Response:
    """Pass-through to a service's own probe (the only way to see them in embedded mode)."""
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

_ = Body  # request bodies are validated by the owning service, not duplicated here
