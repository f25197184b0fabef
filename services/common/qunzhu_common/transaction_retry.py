"""A request whose transaction lost a race is run again, whole; it never answers 500 for it.

PostgreSQL aborts one of two deadlocked transactions (SQLSTATE 40P01) and may abort a transaction that
cannot be serialised (40001); SQLite gives up on a writer it waited for too long ("database is locked").
None of these says anything about the request: run again, the transaction finds the other one committed.

Design. The request's transaction is the session dependency's (`qunzhu_common.deps.get_session`), which
commits when the route returns — so the unit that can be retried is the whole request, not a statement.
`TransactionRetryMiddleware` sits just outside the router: it buffers the request body, runs the app, and
when the app raises a concurrency conflict (`qunzhu_common.db.transient.is_concurrency_conflict`) *before
any byte of the response was sent*, it runs the app again with the same body — up to `attempts` times,
after a short jittered backoff. The failed attempt's transaction was rolled back by the dependency, and
its events were in the outbox of that same transaction, so a re-run repeats nothing that was kept. When
the attempts run out, the error goes on to the problem handler, which answers 503 + Retry-After
(`is_transient`), never 500.

What a re-run cannot undo is a side effect outside the transaction (an HTTP call to another service made
before the commit failed). A route that makes one calls `forbid_replay(request)` first; its conflict then
goes straight to the 503 (the client's retry is the same as our re-run, but the client decides).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qunzhu_common.db.transient import is_concurrency_conflict, is_read_only_write
from qunzhu_common.errors import AppError, app_error_response

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_S = 0.02
_GUARD = "qunzhu.replay_guard"
_WRITER = "qunzhu.writer"  # this attempt's session must be the writer's (a GET that writes, issue #19)

log = logging.getLogger(__name__)


class _ReplayGuard:
    __slots__ = ("allowed",)

    def __init__(self) -> None:
        self.allowed = True


def wants_writer(scope: Scope) -> bool:
    """A GET or HEAD that tried to write on the read pool is being run again: give it the writer."""
    return bool(scope.get(_WRITER))


def forbid_replay(request: Request) -> None:
    """This request has done something outside its transaction: never run it a second time."""
    guard = request.scope.get(_GUARD)
    if isinstance(guard, _ReplayGuard):
        guard.allowed = False


class TransactionRetryMiddleware:
    """Re-run a request whose transaction hit a deadlock, a serialization failure or a locked SQLite file."""

    def __init__(self, app: ASGIApp, *, attempts: int = DEFAULT_ATTEMPTS, backoff_s: float = DEFAULT_BACKOFF_S
                 ) -> None:
        self.app = app
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.attempts == 1:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except AppError as exc:  # an outer limit refused the body (size, read deadline): its answer, not a 500
            await app_error_response(exc, scope["path"])(scope, receive, send)
            return
        writer = False
        attempt = 0
        while attempt < self.attempts:
            attempt += 1
            started = False

            async def tracking_send(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            guard = _ReplayGuard()
            # Each attempt sees a fresh scope: nothing a failed attempt stored in request.state survives.
            attempt_scope: dict[str, Any] = {**scope, _GUARD: guard, _WRITER: writer}
            if "state" in scope:
                attempt_scope["state"] = dict(scope["state"])
            try:
                await self.app(attempt_scope, _replay(body, receive), tracking_send)
                _hand_back(scope, attempt_scope)
                return
            except Exception as exc:
                if not started and guard.allowed and not writer and is_read_only_write(exc):
                    writer = True  # a GET that writes: once more on the writer, not counted as an attempt
                    attempt -= 1
                    continue
                if started or not guard.allowed or attempt == self.attempts or not is_concurrency_conflict(exc):
                    _hand_back(scope, attempt_scope)
                    raise
                delay = self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter
                # A warning: a deadlock that recurs means two paths take their locks in different orders.
                log.warning("transaction conflict on %s %s (attempt %d/%d), running it again: %s",
                         scope.get("method"), scope.get("path"), attempt, self.attempts, _first_line(exc))
                await asyncio.sleep(delay)


def _hand_back(scope: Scope, attempt_scope: dict[str, Any]) -> None:
    """What routing wrote into the attempt's scope (the matched route, path params) is read by outer
    middleware (the HTTP metrics label requests by route template): give it back to the outer scope."""
    scope.update({k: v for k, v in attempt_scope.items() if k not in (_GUARD, _WRITER)})


async def _read_body(receive: Receive) -> list[Message]:
    """Every `http.request` message of the body (a disconnect before its end ends the list)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()  # after the body: wait for the disconnect as the server would report it

    return replay


def _first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:300]
