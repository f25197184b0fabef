"""The chat webhook as a raw ASGI route, in front of FastAPI's middleware, routing and dependency injection.

`POST /webhooks/chat/{connector_id}` carries most of the gateway's traffic, and most of its cost was not the
webhook's work but the layers around it: seven middleware (each wrapping `send`), a body buffered and
replayed, route matching over every route of the API, a dependency solve and a response model. Here it is
answered by one function that does, in line and once, what those layers did for this route:

- the canonical path check (400 `non-canonical-path`), the method override (only POST → PATCH; a webhook
  is never PATCHed) and the NUL checks of the path and query: a request that one of them could concern —
  a raw path that is not exactly the decoded one, an override header, a NUL in the query — is not taken
  here but handed to the full stack, which answers it as it always did;
- the body limits: 413 on a declared or received body over `webhook_max_body_bytes`, 408 (Connection:
  close) when a part of the body is not received within `body_read_timeout_s`;
- the request id (`X-Request-ID` in, or a new one; the correlation id of the logs and of the events; the
  response carries it) and the service name of the logs;
- the HTTP metrics under the same names and labels (`qunzhu_gateway_http_requests_total`,
  `…_http_request_duration_seconds`, `…_http_requests_in_progress`; route `/webhooks/chat/{connector_id}`);
- errors as the problem handlers answer them: a domain error as its problem+json, a database that is
  unavailable or a write that waited past its bound as 503 + Retry-After, a transaction conflict run again
  (as TransactionRetryMiddleware does) — never a 5xx for a client's input;
- the write gate's priority: the delivery is written by the group commit's writer, request priority.

The FastAPI route (gateway.webhooks.api.chat_webhook) stays registered: it is what the OpenAPI document
describes, and it serves the requests handed on. Both call the same pipeline (gateway.webhooks.service).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import PayloadTooLarge
from gateway.limits import RequestTimeout
from gateway.state import GatewayState
from gateway.webhooks import service
from gateway.webhooks.adapters import Incoming
from gateway.webhooks.api import entry_policies_of, media_type_refusal
from gateway.webhooks.deadlines import ReadDeadlines
from qunzhu_common.context import correlation_id_var, service_var
from qunzhu_common.db.transient import is_concurrency_conflict, is_transient
from qunzhu_common.errors import DATABASE_RETRY_AFTER_S, AppError, ServiceUnavailable, app_error_response
from qunzhu_common.ids import uuid4_str
from qunzhu_common.metrics import DeferredCounter, DeferredHistogram, ServiceMetrics
from qunzhu_common.transaction_retry import DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_S

log = logging.getLogger(__name__)

PREFIX = "/webhooks/chat/"
TEMPLATE = "/webhooks/chat/{connector_id}"  # the FastAPI route's path: the metrics' route label
_MAX_REQUEST_ID = 200
_JSON = [(b"content-type", b"application/json")]


class _Disconnected(Exception):
    """The client went away before its body was complete: nothing to answer."""


class ChatWebhookRoute:
    """Pure ASGI: serves `POST /webhooks/chat/{connector_id}` itself, hands every other request to `app`."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, service_name: str = "gateway") -> None:
        self.app = app
        self.metrics = metrics
        self.service_name = service_name
        # The route's HTTP figures as plain numbers, folded into the metrics whenever the registry is read
        # (qunzhu_common.metrics.ServiceMetrics.before_collect): seven locked metric updates per request were
        # ≈ 3 % of the gateway's CPU under ingest load (#19).
        self._requests = DeferredCounter(metrics.http_requests)
        self._in_progress, self._in_progress_shown = 0, 0
        self._duration = DeferredHistogram(metrics.http_duration.labels("POST", TEMPLATE))
        metrics.before_collect(self._fold)
        self._deadlines = ReadDeadlines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        connector_id = path[len(PREFIX):]
        raw = scope.get("raw_path")
        query: bytes = scope.get("query_string", b"")
        # Starlette's State keeps its attributes in `_state`; its __getattr__ was ≈ 1 % of this route's CPU.
        state: GatewayState | None = scope["app"].state._state.get("gateway") if "app" in scope else None
        if (state is None or not connector_id or "/" in connector_id or connector_id in (".", "..")
                or "\\" in path or "\x00" in path or (raw is not None and raw.partition(b"?")[0] != path.encode())
                or b"%00" in query or b"\x00" in query):
            await self.app(scope, receive, send)  # anything the full stack's checks concern: answered there
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if "x-http-method-override" in headers or "origin" in headers:  # an override; CORS: the full stack's
            await self.app(scope, receive, send)
            return
        await self._serve(scope, receive, send, state, connector_id, headers, query)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, state: GatewayState, connector_id: str,
                     headers: dict[str, str], query: bytes) -> None:
        started = time.perf_counter()
        incoming_id = headers.get("x-request-id", "").strip()
        request_id = incoming_id[:_MAX_REQUEST_ID] if incoming_id and incoming_id.isprintable() else uuid4_str()
        token, service_token = correlation_id_var.set(request_id), service_var.set(self.service_name)
        status = 500
        self._in_progress += 1
        try:
            try:
                status, body, extra = await self._answer(scope, receive, state, connector_id, headers, query)
            except _Disconnected:
                status = 499  # nginx's "client closed request": nothing is sent
                return
            except AppError as exc:
                status, body, extra = self._problem(exc, scope)
            except Exception as exc:  # noqa: BLE001 - answered as the problem handlers answer it
                if is_transient(exc):
                    log.warning("database unavailable on POST %s: %s", scope["path"], exc)
                    status, body, extra = self._problem(ServiceUnavailable(
                        "The database is unavailable; retry shortly.", retry_after_s=DATABASE_RETRY_AFTER_S), scope)
                else:
                    log.exception("unhandled error on POST %s", scope["path"])
                    status, body, extra = self._problem(_Internal(), scope)
            extra.append((b"x-request-id", request_id.encode("latin-1")))
            await send({"type": "http.response.start", "status": status, "headers": extra})
            await send({"type": "http.response.body", "body": body})
        finally:
            self._in_progress -= 1
            self._requests.inc("POST", TEMPLATE, str(status))
            self._duration.observe(time.perf_counter() - started)
            service_var.reset(service_token)
            correlation_id_var.reset(token)

    def _fold(self) -> None:
        self._requests.fold()
        if shift := self._in_progress - self._in_progress_shown:
            self.metrics.http_in_progress.labels("POST").inc(shift)  # shared with the full stack's POSTs
            self._in_progress_shown = self._in_progress
        self._duration.fold()

    async def _answer(self, scope: Scope, receive: Receive, state: GatewayState, connector_id: str,
                      headers: dict[str, str], query: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        settings = state.settings
        limit = settings.webhook_max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        body = await _read_body(receive, limit, settings.body_read_timeout_s, self._deadlines)
        connector = await service.connector_view(state=state, connector_id=connector_id)
        refusal = media_type_refusal(headers.get("content-type"), connector.platform)
        if refusal is not None:
            raise refusal
        incoming = Incoming(headers, dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {},
                            body)
        attempt = 0
        while True:  # a transaction conflict is run again, as TransactionRetryMiddleware runs a request again
            attempt += 1
            try:
                outcome = await service.receive_chat(
                    state=state, outbox=state.runtime.outbox, connector=connector, incoming=incoming,
                    entry_policies=entry_policies_of(scope["app"]))
                break
            except Exception as exc:
                if attempt >= DEFAULT_ATTEMPTS or not is_concurrency_conflict(exc):
                    raise
                log.warning("transaction conflict on POST %s (attempt %d/%d), running it again: %s",
                            scope["path"], attempt, DEFAULT_ATTEMPTS, str(exc).split("\n", 1)[0][:300])
                await asyncio.sleep(DEFAULT_BACKOFF_S * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))  # noqa: S311
        if outcome.reply is not None:  # the platform's own answer: OneBot heartbeats 204, QQ's op 12 / op 13
            reply = outcome.reply
            return _rendered(Response(reply.body, status_code=reply.status_code, media_type=reply.media_type))
        if connector.platform == "wecom":  # WeCom documents an empty body when there is no passive reply
            return 200, b"", [(b"content-length", b"0")]
        payload = orjson.dumps({"status": outcome.status, "events": outcome.events})
        return 200, payload, [(b"content-length", str(len(payload)).encode()), *_JSON]

    @staticmethod
    def _problem(exc: AppError, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        return _rendered(app_error_response(exc, scope["path"]))


class _Internal(AppError):
    status, slug, title = 500, "internal", "Internal server error"

    def __init__(self) -> None:
        super().__init__()
        self.detail = ""  # as the problem handler answers an unexpected error: no detail


def _rendered(response: Response) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return response.status_code, bytes(response.body), list(response.raw_headers)


async def _read_body(receive: Receive, limit: int, timeout_s: float, deadlines: ReadDeadlines) -> bytes:
    """The whole body: 413 past `limit` bytes (the rest is not read), 408 when a part is `timeout_s` late."""
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            message: Message = await deadlines.within(timeout_s, receive)
        except TimeoutError:
            raise RequestTimeout(f"no part of the body arrived for {timeout_s:g} s") from None
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
