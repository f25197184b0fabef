"""Request limits for every route: a size cap (413), a deadline for each part of a body (408), and no NUL
characters in the path, the query or an API body, no query number past 64 bits (422).

The public API forwards bodies to the services; without a cap one client could make the gateway hold
gigabytes, and a client trickling its body (slowloris) would hold a connection and a task forever. Webhook
routes keep their own (same-sized) cap. PostgreSQL cannot store NUL in text: a NUL in an id or a field made
the services answer 500, so no request carrying one gets past the gateway (webhook bodies, which must not
be lost, are left to the quarantine). Every answer is problem+json, like every refusal of the API.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from gateway.errors import PayloadTooLarge
from qunzhu_common.errors import AppError, InvalidInput, problem_response

_JSON_NUL = re.compile(rb"(?<!\\)\\u0000|\x00")
# A query integer past int64 (e.g. offset=10**27) overflowed PostgreSQL's bigint in the services (a 500).
_HUGE_INTEGER = re.compile(rb"(?:^|&)[^=&]*=[+-]?\d{19,}(?:&|$)")


class RequestTimeout(AppError):
    status, slug, title = 408, "request-timeout", "Request timeout"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers["Connection"] = "close"  # the rest of the body may still come: never parse it as a request


class BodyLimits:
    """Pure ASGI middleware (no body buffering of its own)."""

    def __init__(self, app: Any, *, max_bytes: int, webhook_max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.webhook_max_bytes = webhook_max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        webhook = scope["path"].startswith("/webhooks/")
        limit = self.webhook_max_bytes if webhook else self.max_bytes
        query = scope["query_string"]
        refusal = None
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            refusal = "NUL characters are not accepted"
        elif not webhook and _HUGE_INTEGER.search(query):  # webhooks: signatures may be all digits
            refusal = "a query number is out of range (at most 18 digits)"
        if refusal is not None:
            response = problem_response(status=422, title=InvalidInput.title, slug=InvalidInput.slug,
                                        detail=refusal, instance=scope["path"])
            await response(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = problem_response(status=413, title=PayloadTooLarge.title, slug=PayloadTooLarge.slug,
                                        detail=f"the body is over {limit} bytes", instance=scope["path"])
            await response(scope, receive, send)
            return
        received, complete = 0, False

        async def guarded() -> dict:
            nonlocal received, complete
            if complete:  # after the body: disconnect listening, no deadline
                return await receive()
            try:
                async with asyncio.timeout(self.read_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"no part of the body arrived for {self.read_timeout_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise PayloadTooLarge(f"the body is over {limit} bytes")
                if not webhook and _JSON_NUL.search(message.get("body", b"")):
                    raise InvalidInput("NUL characters are not accepted")
            return message

        await self.app(scope, guarded, send)
