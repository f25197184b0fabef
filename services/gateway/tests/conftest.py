"""Factories for the gateway's tests: the embedded platform, or a gateway whose upstreams misbehave."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI

from qunzhu.embedded import embedded_platform
from qunzhu_common.testing import eventually, serving, wechatpay_certificate


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    upstreams: dict = field(default_factory=dict)


@asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[Gateway]:
    async with serving(app, base_url="http://gw") as client:
        yield Gateway(app, client)


def community_body(**overrides) -> dict:
    body = {"name": "晨读营", "positioning": "每天早上一起读十页书", "owner_id": "telegram:1"}
    body.update(overrides)
    return body


class Upstream:
    """An httpx transport standing for one service: answers with `respond`, counts the calls."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.calls: list[httpx.Request] = []
        self._respond = respond
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        return self._respond(request)


def refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def ready(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"status": "ok"})


@pytest.fixture(name="eventually")
def eventually_fixture():
    return eventually


@pytest.fixture(name="community_body")
def community_body_fixture():
    return community_body


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Every service in this process (SQLite files in tmp_path, one LocalBus) behind the gateway."""
    async with embedded_platform(tmp_path) as gateway_app:
        async with _serve(gateway_app) as gateway:
            yield gateway


@pytest.fixture
def serve_gateway() -> Callable[[FastAPI], AbstractAsyncContextManager[Gateway]]:
    """`async with serve_gateway(app) as gw`: run a gateway app's lifespan and talk to it."""
    return _serve


@pytest.fixture
def upstream() -> Callable[[Callable[[httpx.Request], httpx.Response]], Upstream]:
    return Upstream


@pytest.fixture(name="refusing")
def refusing_fixture():
    return refusing


@pytest.fixture(name="ready")
def ready_fixture():
    return ready


# -- a gateway alone: its own database, a LocalBus, services answering "ready" ---------------------

ADMIN_KEY = "ops-admin-key-for-tests"


def gateway_settings(tmp_path: Path, **overrides):
    from gateway.settings import GatewaySettings

    values = dict(data_dir=tmp_path, admin_api_key=ADMIN_KEY, outbox_poll_interval_s=0.05,
                  action_poll_interval_s=0.05, action_backoff_s=0.01)
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def _standalone(tmp_path: Path, respond=None, **overrides) -> AsyncIterator[Gateway]:
    from gateway.app import create_app
    from qunzhu_common.bus.local import LocalBus

    bus = LocalBus(tmp_path / "bus.sqlite3", partitions=3, poll_interval_s=0.05)
    await bus.start()
    upstreams = {name: Upstream(respond or ready) for name in ("membership", "content", "engagement")}
    try:
        app = create_app(gateway_settings(tmp_path, **overrides), bus=bus,
                         transports={name: u.transport for name, u in upstreams.items()})
        async with _serve(app) as gateway:
            gateway.upstreams = upstreams
            yield gateway
    finally:
        await bus.stop()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """The gateway app alone (its lifespan running), with an operator key `ADMIN_KEY`."""
    async with _standalone(tmp_path) as gw:
        yield gw


@pytest.fixture
def standalone_gateway():
    """`async with standalone_gateway(tmp_path, **settings) as gw` for tests that need other settings."""
    return _standalone


@pytest.fixture(name="admin_headers")
def admin_headers_fixture() -> dict[str, str]:
    return {"X-API-Key": ADMIN_KEY}


async def outbox_events(app: FastAPI) -> list:
    """Events the gateway has durably written, oldest first."""
    from sqlalchemy import select

    from gateway.models import outbox_table
    from qunzhu_common.events.envelope import Envelope

    async with app.state.runtime.session_maker() as session:
        rows = (await session.execute(select(outbox_table.c.payload).order_by(outbox_table.c.seq))).all()
    return [Envelope.from_bytes(bytes(r.payload)) for r in rows]


@pytest.fixture(name="outbox_events")
def outbox_events_fixture():
    return outbox_events


def metric_value(app: FastAPI, name: str, **labels: str) -> float:
    value = app.state.runtime.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.fixture(name="metric_value")
def metric_value_fixture():
    return metric_value


def member_headers(app: FastAPI, subject: str) -> dict[str, str]:
    """A valid member token for `subject`, as the login routes would issue it."""
    from gateway.auth.tokens import issue

    state = app.state.gateway
    token, _ = issue(state.jwt_key, state.settings, subject=subject, method="test")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(name="member_headers")
def member_headers_fixture():
    return member_headers


async def publish(app: FastAPI, type_: str, data, community_id: str) -> None:
    """Put an event on the gateway's bus as its producing service would."""
    from qunzhu_common.bus.base import OutgoingRecord
    from qunzhu_common.events.envelope import new_envelope

    runtime = app.state.runtime
    envelope = new_envelope(type=type_, data=data, source="test", community_id=community_id)
    topic, key = runtime.registry.route(envelope)
    await runtime.bus.publish([OutgoingRecord(topic=topic, key=key, value=envelope.to_bytes())])


@pytest.fixture(name="publish")
def publish_fixture():
    return publish


@dataclass
class FakePlatform:
    """A chat platform on loopback: records every request; answers from `script` (status, json) first,
    then like Telegram (`{"ok": true}`) or a WeCom robot (`{"errcode": 0}`)."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    script: deque = field(default_factory=deque)

    async def handle(self, request):
        from starlette.responses import JSONResponse

        body = await request.body()
        self.received.append({"path": request.url.path, "query": dict(request.query_params),
                              "headers": dict(request.headers), "body": body, "at": time.monotonic()})
        if self.script:
            status, answer = self.script.popleft()
            return JSONResponse(answer, status_code=status)
        if request.url.path.startswith("/cgi-bin"):
            return JSONResponse({"errcode": 0, "errmsg": "ok"})
        return JSONResponse({"ok": True, "result": True})

    def calls(self, suffix: str) -> list[dict]:
        return [r for r in self.received if r["path"].endswith(suffix)]


@pytest.fixture
async def fake_platform() -> AsyncIterator[FakePlatform]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    platform = FakePlatform()
    app = Starlette(routes=[Route("/{path:path}", platform.handle, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    platform.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    yield platform
    server.should_exit = True
    await task


# -- WeChat Pay's platform certificate (it signs notifications and API answers) ----------------------


@dataclass
class WechatpayPlatform:
    key: rsa.RSAPrivateKey
    pem: str
    serial: str  # hex, as in Wechatpay-Serial

    def headers(self, body: bytes, *, key: rsa.RSAPrivateKey | None = None, serial: str | None = None,
                at: int | None = None) -> dict[str, str]:
        """Wechatpay-* headers signing `body` (with another `key` or `serial` to forge them)."""
        stamp, nonce = str(at or int(time.time())), secrets.token_hex(16)
        message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
        signature = (key or self.key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial or self.serial,
                "Wechatpay-Signature": base64.b64encode(signature).decode()}


@pytest.fixture(scope="session")
def wechatpay_platform() -> WechatpayPlatform:
    serial = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
    key, pem = wechatpay_certificate(serial)
    return WechatpayPlatform(key, pem, f"{serial:X}")


# -- stripe-mock: Stripe's own mock of its API (a Go program), on a free loopback port ---------------

STRIPE_MOCK_INSTALL = "bash deploy/local/stripe-mock.sh fetch"


def _stripe_mock_binary() -> str:
    import os
    import shutil

    candidates = [os.environ.get("STRIPE_MOCK_BIN", ""), shutil.which("stripe-mock") or "",
                  str(Path(os.environ.get("QUNZHU_CACHE_DIR", Path.home() / ".cache/qunzhu")) / "bin/stripe-mock")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"stripe-mock is not installed: run `{STRIPE_MOCK_INSTALL}` (or set STRIPE_MOCK_BIN)")


@pytest.fixture(scope="session")
def stripe_mock() -> Iterator[str]:
    """The base URL of a stripe-mock started for this test session (and stopped after it)."""
    import socket
    import subprocess

    binary = _stripe_mock_binary()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Its HTTPS listener too on loopback and a port of the system's choice (by default it takes :12112).
    process = subprocess.Popen([binary, "-http-addr", f"127.0.0.1:{port}", "-https-addr", "127.0.0.1:"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:  # make test's safety net stops it if this run is cut short (tests/servers.py)
        from tests.servers import forget_process, record_process
    except ImportError:  # a bare pytest elsewhere: nothing to record
        record_process, forget_process = (lambda *_: None), (lambda *_: None)
    record_process(process, "stripe-mock")
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    pytest.fail(f"stripe-mock did not start on port {port}: {err[-500:]}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        forget_process(process.pid)
