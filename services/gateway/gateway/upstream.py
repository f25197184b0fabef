"""Calls from the gateway to the services: HTTP in distributed mode, ASGI in embedded mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response

from gateway.auth.principal import Principal
from gateway.paths import ServicePath
from gateway.settings import GatewaySettings
from qunzhu_common import actor as actors
from qunzhu_common.context import current_correlation_id
from qunzhu_common.errors import ServiceUnavailable
from qunzhu_common.requestctx import REQUEST_ID_HEADER
from qunzhu_common.transaction_retry import forbid_replay

log = logging.getLogger(__name__)

UPSTREAMS = ("membership", "content", "engagement")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "if-none-match", "idempotency-key")
FORWARDED_RESPONSE_HEADERS = ("content-type", "location", "etag", "retry-after")


class Upstreams:
    def __init__(self, clients: Mapping[str, httpx.AsyncClient], *, retries: int, internal_key: bytes) -> None:
        self._clients = dict(clients)
        self._retries = retries
        self._internal_key = internal_key

    def client(self, service: str) -> httpx.AsyncClient:
        return self._clients[service]

    async def call(
        self, service: str, method: str, path: str, *, params: object = None, content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call with retries for idempotent methods; 503 problem when the service is unreachable."""
        attempts = 1 + (self._retries if method.upper() in IDEMPOTENT_METHODS else 0)
        request_headers = {REQUEST_ID_HEADER: current_correlation_id(), **(headers or {})}
        last_error: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = await self._clients[service].request(
                    method, path, params=params, content=content, headers=request_headers
                )
            except (httpx.TransportError, OSError) as exc:  # refused, reset, timed out
                last_error = exc
                log.warning("%s %s %s failed (attempt %d/%d): %r", service, method, path, attempt, attempts, exc)
                if attempt < attempts:
                    await asyncio.sleep(0.1 * attempt)
                continue
            if response.status_code == 503 and attempt < attempts:
                await asyncio.sleep(0.1 * attempt)
                continue
            return response
        raise ServiceUnavailable(f"the {service} service is unavailable", service=service) from last_error

    async def call_as(
        self, principal: Principal, service: str, method: str, path: ServicePath | str, *,
        query: list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        """A call of the gateway's own for this caller (signed actor assertion), e.g. reading a plan."""
        target = path if isinstance(path, ServicePath) else ServicePath(path)
        headers = actors.sign(self._internal_key, principal.as_actor(), method=method, path=target.absolute,
                              query=query or [])
        return await self.call(service, method, target.encoded, params=query or None, headers=headers)

    async def forward(
        self, service: str, request: Request, path: ServicePath | str, *, principal: Principal | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Pass a front-end request through to a service and its answer back.

        Only listed headers pass. The caller goes as `X-Actor-Id` with an `X-Actor-Assertion` that the
        service verifies: signed over exactly the method, path and query forwarded here, so a service
        never acts for a caller on a path other than the one the gateway saw.
        """
        target = path if isinstance(path, ServicePath) else ServicePath(path)
        forbid_replay(request)  # the service acts on this call: a conflict here later must not call it again
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED_REQUEST_HEADERS}
        query = list(request.query_params.multi_items())
        if principal is not None:
            headers.update(actors.sign(self._internal_key, principal.as_actor(), method=request.method,
                                       path=target.absolute, query=query))
        upstream = await self.call(
            service, request.method, target.encoded, params=query,
            content=await request.body() if body is None else body, headers=headers,
        )
        return Response(
            content=upstream.content,
            status_code=upstream.status_code,
            headers={k: v for k, v in upstream.headers.items() if k in FORWARDED_RESPONSE_HEADERS},
        )


def upstreams_lifespan(settings: GatewaySettings, transports: Mapping[str, httpx.AsyncBaseTransport] | None):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        urls = {name: getattr(settings, f"{name}_url") for name in UPSTREAMS}
        timeout = httpx.Timeout(settings.upstream_timeout_s, connect=min(3.0, settings.upstream_timeout_s))
        clients = {}
        for name in UPSTREAMS:
            transport = (transports or {}).get(name)
            base_url = f"http://{name}.embedded" if transport is not None else urls[name]
            clients[name] = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)
        key = actors.internal_key(settings.internal_key.get_secret_value(), settings.data_dir)
        app.state.upstreams = Upstreams(clients, retries=settings.upstream_retries, internal_key=key)
        try:
            yield
        finally:
            await asyncio.gather(*(c.aclose() for c in clients.values()))

    return lifespan


async def upstreams_of(request: Request) -> Upstreams:
    return request.app.state.upstreams  # type: ignore[no-any-return]
