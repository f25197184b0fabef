"""A pytest plugin: no outbound call or publish starts while the same asyncio task holds a database connection.

Why. Embedded mode pools one SQLite connection per database; a task that keeps it checked out while it
waits on the network (a bot bridge, a payment provider, the bus) makes every other request of that service
wait as long — the 30 s "QueuePool limit of size 1 overflow 0 reached" stall of issue #19. On PostgreSQL
the same pattern holds row locks and a pool slot across someone else's latency. The rule is therefore:
claim rows → commit/close → call → record the result in a new short transaction.

What it watches.
- Connections: SQLAlchemy's pool `checkout`/`checkin` events on every pool (a class-level listener on
  `Pool`, so every engine any test creates is covered); each checkout is attributed to the asyncio task
  that made it, with the stack that made it.
- Outbound calls: `httpx.AsyncClient.send` — every transport, including `ASGITransport` and
  `MockTransport`. An in-process service reached through ASGITransport counts: in embedded mode it may
  need a connection the caller is holding (a deadlock on a one-connection pool) and its own latency is
  as unbounded as a network call's; a MockTransport stands for the network in unit tests.
- Publishes: `publish` of every `qunzhu_common.bus.base.Bus` subclass (LocalBus appends to its own
  SQLite file with an fsync; KafkaBus waits for broker acknowledgements).

A connection may be declared as holding nothing that others wait for (the outbox relay's leadership lock
on PostgreSQL) with `qunzhu_common.db.engine.mark_lock_only(connection)`; it is then ignored.

Modes (environment `QUNZHU_IO_GUARD`): `strict` (default) fails the test in which a violation happened,
with both stacks; `collect` only lists every violation at the end of the run (to survey a suite);
`off` disables the plugin.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import traceback
import weakref
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

from qunzhu_common.bus.base import Bus
from qunzhu_common.db.engine import LOCK_ONLY

_MODE = os.environ.get("QUNZHU_IO_GUARD", "strict").lower()
_STACK_LIMIT = 14


@dataclass
class Violation:
    call: str
    call_stack: str
    checkout_stack: str
    test: str = ""

    def render(self) -> str:
        return (f"{self.call} started while this task held a database connection\n"
                f"--- the outbound call:\n{self.call_stack}--- the connection was checked out here:\n"
                f"{self.checkout_stack}")


@dataclass
class _State:
    # task → {connection record id: (record ref, checkout stack)}
    held: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[int, tuple[Any, traceback.StackSummary]]] = field(
        default_factory=weakref.WeakKeyDictionary)
    owner: dict[int, weakref.ref[asyncio.Task[Any]]] = field(default_factory=dict)
    current: list[Violation] = field(default_factory=list)
    collected: list[Violation] = field(default_factory=list)
    test: str = ""


_state = _State()
_lock = threading.Lock()


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (sync engine use): not an asyncio task's connection
        return None


def _async_stack() -> traceback.StackSummary:
    """The stack of the code that asked for the connection: SQLAlchemy's async layer runs the pool in a
    greenlet whose own stack ends at greenlet_spawn; the awaiting code is in the parent greenlet."""
    stack = traceback.extract_stack(limit=40)
    try:
        import greenlet

        parent = greenlet.getcurrent().parent
        if parent is not None and parent.gr_frame is not None:
            return traceback.StackSummary.from_list(
                list(traceback.extract_stack(parent.gr_frame, limit=40)) + list(stack))
    except ImportError:  # pragma: no cover - SQLAlchemy's asyncio extra always installs greenlet
        pass
    return stack


def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    task = _task()
    if task is None:
        return
    stack = _async_stack()
    with _lock:
        _state.held.setdefault(task, {})[id(record)] = (record, stack)
        _state.owner[id(record)] = weakref.ref(task)


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    with _lock:
        ref = _state.owner.pop(id(record), None)
        task = ref() if ref is not None else None
        if task is not None:
            held = _state.held.get(task)
            if held is not None:
                held.pop(id(record), None)


def _held_by_current_task() -> list[traceback.StackSummary]:
    task = _task()
    if task is None:
        return []
    with _lock:
        held = dict(_state.held.get(task, {}))
    return [stack for record, stack in held.values() if not record.info.get(LOCK_ONLY)]


def _short(stack: traceback.StackSummary) -> str:
    frames = [f for f in stack if "site-packages" not in f.filename and "testing_io_guard" not in f.filename]
    return "".join(traceback.format_list(frames[-_STACK_LIMIT:]))


def _check(call: str) -> None:
    held = _held_by_current_task()
    if not held:
        return
    violation = Violation(call=call, call_stack=_short(traceback.extract_stack(limit=40)),
                          checkout_stack=_short(held[0]), test=_state.test)
    _state.current.append(violation)
    _state.collected.append(violation)


def _guard_async(fn: Any, describe: Any) -> Any:
    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        _check(describe(*args, **kwargs))
        return await fn(*args, **kwargs)

    guarded.__qunzhu_io_guard__ = True  # type: ignore[attr-defined]
    return guarded


def _describe_send(client: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any) -> str:
    return f"HTTP {request.method} {request.url.copy_with(query=None)}"


def _guard_buses() -> None:
    pending: list[type] = [Bus]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        publish = cls.__dict__.get("publish")
        if publish is None or getattr(publish, "__qunzhu_io_guard__", False) or getattr(
                publish, "__isabstractmethod__", False):
            continue
        cls.publish = _guard_async(  # type: ignore[attr-defined]
            publish, lambda bus, records, *a, _n=cls.__name__, **k: f"{_n}.publish({len(records)} records)")


_installed = False


def install() -> None:
    """Start watching (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(Pool, "checkout", _on_checkout)
    event.listen(Pool, "checkin", _on_checkin)
    httpx.AsyncClient.send = _guard_async(httpx.AsyncClient.send, _describe_send)  # type: ignore[method-assign]
    _guard_buses()


def pytest_configure(config: pytest.Config) -> None:
    if _MODE != "off":
        install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    _state.test = item.nodeid
    try:
        return (yield)
    finally:
        _state.test = ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    if _MODE != "off":
        _guard_buses()  # Bus subclasses a test module defines
    _state.current.clear()
    return (yield)


def _fail_if_violated() -> None:
    if _MODE != "strict" or not _state.current:
        return
    violations, _state.current[:] = list(_state.current), []
    pytest.fail("network I/O while holding a database connection (issue #19; see "
                "qunzhu_common/testing_io_guard.py):\n\n" + "\n".join(v.render() for v in violations[:3]),
                pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    result = yield  # a test that failed anyway raises here and is reported as it failed
    _fail_if_violated()
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    result = yield
    _fail_if_violated()  # a background worker's violation seen while the fixtures shut it down
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MODE != "collect" or not _state.collected:
        return
    seen: dict[tuple[str, str], Violation] = {}
    for v in _state.collected:
        key = (v.call_stack.strip().splitlines()[-2:][0] if v.call_stack.strip() else v.call, v.checkout_stack)
        seen.setdefault(key, v)
    terminalreporter.section(f"io guard: {len(_state.collected)} violations, {len(seen)} distinct")
    for v in seen.values():
        terminalreporter.write_line(f"[{v.test}] " + v.render())
