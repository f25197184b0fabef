"""The chat webhook's raw ASGI route (issue #19 part 4): `POST /webhooks/chat/{connector_id}` is answered
ahead of FastAPI's middleware, routing and dependencies, and still does what they did for it — request id,
HTTP metrics under the route template, problem+json refusals, 503 (never 500) for a database that is not
there, a transaction conflict run again — while what the full stack must judge (a non-canonical raw path,
a method override) is handed on to it and answered as before."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import time

import pytest
from sqlalchemy.exc import OperationalError
from starlette.middleware import Middleware

from gateway.webhooks import service
from gateway.webhooks.verify import sign_standard
from qunzhu_common.db.writegate import WriteWaitTimeout

TEMPLATE = "/webhooks/chat/{connector_id}"


class Probe:
    """Innermost middleware: every request that went through FastAPI's stack."""

    seen: list[tuple[str, str]] = []

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            Probe.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
async def gw(tmp_path, monkeypatch, standalone_gateway):
    from gateway import app as app_module

    real_create_app = app_module.create_app

    def probed(*args, **kwargs):
        app = real_create_app(*args, **kwargs)
        app.user_middleware.append(Middleware(Probe))  # appended last: innermost, just before routing
        return app

    monkeypatch.setattr("gateway.app.create_app", probed)
    Probe.seen = []
    async with standalone_gateway(tmp_path) as gateway:
        yield gateway


async def _connector(gw, admin_headers) -> tuple[str, str]:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    created = await gw.client.post("/api/v1/communities/c-1/connectors", headers=admin_headers, json={
        "community_id": "c-1", "platform": "generic", "groups": ["g"], "secrets": {"signing_secrets": [secret]}})
    assert created.status_code == 201, created.text
    return created.json()["id"], secret


def _signed(secret: str, delivery: str, **fields) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "message", "group_id": "g", "message_id": delivery, "sender_id": "u", "text": "早",
                       **fields}).encode()
    stamp = int(time.time())
    return body, {"content-type": "application/json", "webhook-id": delivery, "webhook-timestamp": str(stamp),
                  "webhook-signature": sign_standard(secret, delivery, stamp, body)}


def _count(app, status: int) -> float:
    value = app.state.runtime.metrics.registry.get_sample_value(
        "qunzhu_gateway_http_requests_total", {"method": "POST", "route": TEMPLATE, "status": str(status)})
    return value or 0.0


async def test_a_delivery_is_answered_by_the_raw_route_with_request_id_metrics_and_correlation(
    gw, admin_headers, outbox_events
):
    connector_id, secret = await _connector(gw, admin_headers)
    Probe.seen.clear()
    body, headers = _signed(secret, "m-1")
    answer = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body,
                                  headers={**headers, "X-Request-ID": "req-abc"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "events": 1}
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"] == "req-abc"
    assert Probe.seen == []  # FastAPI's middleware stack and router never saw it
    replay = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body, headers=headers)
    assert replay.json() == {"status": "duplicate", "events": 0}
    assert len(replay.headers["x-request-id"]) == 36  # a new one when the caller sent none
    assert _count(gw.app, 200) == 2
    duration = gw.app.state.runtime.metrics.registry.get_sample_value(
        "qunzhu_gateway_http_request_duration_seconds_count", {"method": "POST", "route": TEMPLATE})
    assert duration == 2
    events = [e for e in await outbox_events(gw.app) if e.type == "chat.message.posted"]
    assert [e.correlation_id for e in events] == ["req-abc"]


async def test_refusals_are_problems_counted_under_the_route(gw, admin_headers):
    connector_id, secret = await _connector(gw, admin_headers)
    Probe.seen.clear()
    body, headers = _signed(secret, "m-2")
    unknown = await gw.client.post("/webhooks/chat/no-such-connector", content=body, headers=headers)
    forged = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body,
                                  headers={**headers, "webhook-signature": "v1,AAAA"})
    xml = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body,
                               headers={**headers, "content-type": "text/xml"})
    huge = await gw.client.post(f"/webhooks/chat/{connector_id}", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                                headers=headers)
    for answer, status in ((unknown, 404), (forged, 401), (xml, 415), (huge, 413)):
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == status
        assert answer.json()["instance"].startswith("/webhooks/chat/")
        assert answer.headers["x-request-id"]
        assert _count(gw.app, status) == 1
    assert forged.json()["reason"] == "signature"
    assert Probe.seen == []


async def test_what_the_full_stack_judges_is_handed_on_to_it(gw, admin_headers):
    connector_id, secret = await _connector(gw, admin_headers)
    Probe.seen.clear()
    body, headers = _signed(secret, "m-3")
    dotted = await gw.client.post("/webhooks/chat/%2e%2e", content=body, headers=headers)
    assert dotted.status_code == 400 and dotted.json()["type"].endswith("/non-canonical-path")
    overridden = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body,
                                      headers={**headers, "X-HTTP-Method-Override": "PATCH"})
    assert overridden.status_code == 405
    encoded = await gw.client.post(f"/webhooks/chat/{connector_id[:4]}%41{connector_id[5:]}", content=body,
                                   headers=headers)  # an escape in the raw path: the full stack decides
    assert encoded.status_code in (200, 404), encoded.text
    assert ("PATCH", f"/webhooks/chat/{connector_id}") in Probe.seen
    assert any(path.startswith("/webhooks/chat/") and method == "POST" for method, path in Probe.seen)
    # and a plain one is not
    Probe.seen.clear()
    assert (await gw.client.post(f"/webhooks/chat/{connector_id}", content=body, headers=headers)).status_code == 200
    assert Probe.seen == []
    # a browser's (an Origin header): CORS is the full stack's business
    body, headers = _signed(secret, "m-4")
    from_browser = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body,
                                        headers={**headers, "Origin": "https://app.example"})
    assert from_browser.status_code == 200
    assert Probe.seen == [("POST", f"/webhooks/chat/{connector_id}")]


async def test_a_write_that_waited_past_its_bound_is_503_with_retry_after(gw, admin_headers, monkeypatch):
    connector_id, secret = await _connector(gw, admin_headers)

    async def busy(**_kwargs):
        raise WriteWaitTimeout("the database's write connection was busy for 5.0s (request)")

    monkeypatch.setattr(service, "receive_chat", busy)
    body, headers = _signed(secret, "m-4")
    answer = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body, headers=headers)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_transaction_conflict_is_run_again(gw, admin_headers, monkeypatch):
    connector_id, secret = await _connector(gw, admin_headers)
    real, calls = service.receive_chat, []

    async def conflicting_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))
        return await real(**kwargs)

    monkeypatch.setattr(service, "receive_chat", conflicting_once)
    body, headers = _signed(secret, "m-5")
    answer = await gw.client.post(f"/webhooks/chat/{connector_id}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "events": 1}
    assert len(calls) == 2


async def test_a_stalled_body_is_a_408_problem(gw, admin_headers):
    connector_id, secret = await _connector(gw, admin_headers)
    gw.app.state.gateway.settings.body_read_timeout_s = 0.1
    body, headers = _signed(secret, "m-stalled")
    parts = [{"type": "http.request", "body": body[:10], "more_body": True}]

    async def receive():
        if parts:
            return parts.pop()
        await asyncio.sleep(30)  # the rest never comes
        return {"type": "http.disconnect"}

    sent = []

    async def send(message):
        sent.append(message)

    path = f"/webhooks/chat/{connector_id}"
    Probe.seen.clear()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "app": gw.app,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
    in_progress = "qunzhu_gateway_http_requests_in_progress"
    serving = asyncio.create_task(gw.app(scope, receive, send))
    await asyncio.sleep(0.02)  # waiting for the rest of the body: in progress, seen by a scrape now
    assert gw.app.state.runtime.metrics.registry.get_sample_value(in_progress, {"method": "POST"}) == 1
    await asyncio.wait_for(serving, timeout=10)
    assert gw.app.state.runtime.metrics.registry.get_sample_value(in_progress, {"method": "POST"}) == 0
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["status"] == 408
    assert _count(gw.app, 408) == 1
    assert Probe.seen == []  # the raw route's own deadline, not the full stack's BodyLimits
