"""One OpenAPI document for the whole platform: the gateway's own routes plus every service's routes as
they are reached through the gateway (`/api/v1/<service>/…`), fetched from the services and merged.

Each service's component schemas are prefixed with its name so two services' `Community` never clash.
A service that cannot be reached is listed under `x-unavailable-services` rather than failing the docs.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.upstream import UPSTREAMS, Upstreams
from qunzhu_common.errors import AppError

_SKIPPED = frozenset({"/healthz", "/readyz", "/metrics"})
# Gateway routes that check the caller and then forward to one service route: they are documented with
# that route's parameters, body and answers, so a generated client types them instead of seeing "object".
_FORWARDED = {
    ("/api/v1/communities", "post"): ("membership", "/communities"),
    ("/api/v1/communities", "get"): ("membership", "/communities"),
    ("/api/v1/communities/{community_id}", "get"): ("membership", "/communities/{community_id}"),
}
_BORROWED = ("parameters", "requestBody", "responses")
_CACHE_S = 30.0


def _prefixed(document: Any, service: str) -> Any:
    """Rewrite component references: #/components/schemas/X → #/components/schemas/<service>__X."""
    text = json.dumps(document).replace('"#/components/schemas/', f'"#/components/schemas/{service}__')
    return json.loads(text)


def merge(own: dict[str, Any], services: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    document = json.loads(json.dumps(own))
    paths = document.setdefault("paths", {})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    unavailable = []
    for service, spec in services.items():
        if spec is None:
            unavailable.append(service)
            continue
        spec = _prefixed(spec, service)
        for name, schema in (spec.get("components") or {}).get("schemas", {}).items():
            schemas[f"{service}__{name}"] = schema
        for path, operations in (spec.get("paths") or {}).items():
            if path in _SKIPPED:
                continue
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation["tags"] = [f"{service}: {t}" for t in operation.get("tags") or ["api"]]
                    if "operationId" in operation:
                        operation["operationId"] = f"{service}__{operation['operationId']}"
            paths[f"/api/v1/{service}{path}"] = operations
    _borrow_forwarded(paths)
    if unavailable:
        document["x-unavailable-services"] = unavailable
    return document


def _borrow_forwarded(paths: dict[str, Any]) -> None:
    for (path, method), (service, target) in _FORWARDED.items():
        own = (paths.get(path) or {}).get(method)
        theirs = (paths.get(f"/api/v1/{service}{target}") or {}).get(method)
        if isinstance(own, dict) and isinstance(theirs, dict):
            own.update({key: json.loads(json.dumps(theirs[key])) for key in _BORROWED if key in theirs})


def install_aggregated_openapi(app: FastAPI) -> None:
    """Replace FastAPI's /openapi.json (sync, own routes only) by the merged document; /docs reads it."""
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url]
    cache: dict[str, Any] = {}

    async def fetch(upstreams: Upstreams, service: str) -> dict[str, Any] | None:
        try:
            response = await upstreams.call(service, "GET", "/openapi.json")
        except AppError:
            return None
        return response.json() if response.status_code == 200 else None

    @app.get(app.openapi_url or "/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        if cache.get("at", 0) > time.monotonic() - _CACHE_S:
            return JSONResponse(cache["document"])
        upstreams: Upstreams = request.app.state.upstreams
        fetched = await asyncio.gather(*(fetch(upstreams, s) for s in UPSTREAMS))
        document = merge(app.openapi(), dict(zip(UPSTREAMS, fetched, strict=True)))
        if not document.get("x-unavailable-services"):
            cache.update(at=time.monotonic(), document=document)
        return JSONResponse(document)
