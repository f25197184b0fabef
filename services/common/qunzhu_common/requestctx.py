"""Request id propagation: the caller's X-Request-ID (or a new one) becomes the correlation id."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qunzhu_common.context import correlation_id_var, service_var
from qunzhu_common.ids import uuid4_str

REQUEST_ID_HEADER = "x-request-id"
_MAX_LEN = 200


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, service: str | None = None) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1").strip()
        request_id = incoming[:_MAX_LEN] if incoming.isprintable() and incoming else uuid4_str()
        token = correlation_id_var.set(request_id)
        service_token = service_var.set(self.service)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            service_var.reset(service_token)
            correlation_id_var.reset(token)
