"""uvicorn's HTTP protocol with a deadline for request headers (slow-client / slowloris protection).

uvicorn times out idle keep-alive connections, but not a client that opens a connection and then sends
its request line and headers slowly (or never): each such client holds a connection and its buffers
indefinitely. This protocol gives every request `QUNZHU_HTTP_HEADER_TIMEOUT_S` seconds (default 10) from
the connection (or the request's first byte) to its last header line; past it the client gets a
408 problem+json and the connection is closed. Slow bodies are the application's to bound (the gateway
answers 408 when a body stalls).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT_S = 10.0


def header_timeout_s() -> float:
    return float(os.environ.get("QUNZHU_HTTP_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S))


def _timeout_response() -> bytes:
    body = json.dumps({"type": "https://qunzhu.dev/problems/request-timeout", "title": "Request timeout",
                       "status": 408, "detail": "the request headers did not arrive in time"}).encode()
    head = (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    return head + body


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes connections whose request headers take too long."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_timeout_s = header_timeout_s()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self._header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served (its headers were complete): not ours to cut
        self.transport.write(_timeout_response())
        self.transport.close()
