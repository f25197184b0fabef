"""Helpers the services' unit tests share (imported by their conftest.py files; never by service code).

Needs pytest and httpx, which only the `dev` extra installs. Also used by the suites under tests/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import parse_qsl, unquote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from qunzhu_common import actor
from qunzhu_common.bus.base import Bus, OutgoingRecord

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T] | T], *, within: float = 5.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy (and return it); fail the test past the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


class GatewayActorAuth(httpx.Auth):
    """Signs a request's `X-Actor-Id` as the gateway does (a service's unit tests name their caller
    with that header alone). A request that already carries an assertion is left as it is."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request):  # noqa: ANN201 - httpx's generator protocol
        actor_id = request.headers.get(actor.ACTOR_HEADER)
        if actor_id and actor.ASSERTION_HEADER not in request.headers:
            kind = "platform" if actor_id == actor.PLATFORM_OPERATOR else (
                "service" if actor_id.startswith("service:") else "member")
            signed = actor.sign(
                self._key(), actor.Actor(id=actor_id, kind=kind), method=request.method,  # type: ignore[arg-type]
                path=unquote(request.url.path), query=parse_qsl(request.url.query.decode(), keep_blank_values=True),
            )
            request.headers[actor.ASSERTION_HEADER] = signed[actor.ASSERTION_HEADER]
        yield request


def app_internal_key(app: FastAPI) -> bytes:
    settings = app.state.runtime.settings
    return actor.internal_key(settings.internal_key.get_secret_value(), settings.data_dir)


@asynccontextmanager
async def serving(app: FastAPI, *, base_url: str = "http://t") -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it in-process; an `X-Actor-Id` is signed as the gateway would."""
    async with app.router.lifespan_context(app):
        auth = GatewayActorAuth(lambda: app_internal_key(app))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, auth=auth) as client:
            yield client


def wechatpay_certificate(serial: int) -> tuple[rsa.RSAPrivateKey, str]:
    """A WeChat Pay platform key and its self-signed certificate (PEM) with that serial number."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


class ListBus(Bus):
    """A bus that only remembers what was published (tests of publishers: the outbox relay)."""

    def __init__(self) -> None:
        self.published: list[OutgoingRecord] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ping(self) -> None: ...

    async def subscribe(self, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN003, ANN201
        raise NotImplementedError

    async def publish(self, records: list[OutgoingRecord]) -> None:
        await asyncio.sleep(0)  # a real bus yields to the loop
        self.published.extend(records)
