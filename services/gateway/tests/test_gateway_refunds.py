"""Refunds out: refund.requested → Stripe / WeChat Pay, against a real HTTP server on loopback playing both."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.models import PaymentRef, RefundOrder
from qunzhu_common.events.contracts.membership import RefundRequested

COMMUNITY = "c-refunds"
STRIPE_KEY = "sk_test_refunds_123"
MCHID = "1900000109"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
STRIPE_PATH = "/v1/refunds"
WECHAT_PATH = "/v3/refund/domestic/refunds"


@dataclass
class FakeProviders:
    """Stripe and WeChat Pay on loopback: records every request; answers from `script[path]` (status, json)
    first, then with an accepted refund."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    script: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    sign_wechat: Callable[[bytes], dict[str, str]] | None = None  # WeChat Pay signs every answer

    def answer(self, path: str, status: int, body: dict):
        from starlette.responses import Response

        content = json.dumps(body, ensure_ascii=False).encode()
        headers = self.sign_wechat(content) if path == WECHAT_PATH and self.sign_wechat else {}
        return Response(content, status_code=status, media_type="application/json", headers=headers)

    async def handle(self, request):
        body = await request.body()
        self.received.append({"method": request.method, "path": request.url.path, "headers": dict(request.headers),
                              "body": body})
        path = request.url.path
        if self.script[path]:
            status, answer = self.script[path].popleft()
            return self.answer(path, status, answer)
        if path == STRIPE_PATH:
            form = parse_qs(body.decode())
            return self.answer(path, 200, {"id": f"re_{len(self.received)}", "object": "refund", "status": "pending",
                                           "amount": int(form["amount"][0]), "currency": "cny"})
        if path == WECHAT_PATH:
            sent = json.loads(body)
            return self.answer(path, 200, {
                "refund_id": "50000000382019052709732678859", "out_refund_no": sent["out_refund_no"],
                "transaction_id": sent["transaction_id"], "status": "PROCESSING", "amount": sent["amount"]})
        return self.answer(path, 404, {"error": {"message": "not found"}})

    def calls(self, path: str) -> list[dict]:
        return [r for r in self.received if r["path"] == path]


@pytest.fixture
async def providers(wechatpay_platform):
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    fake = FakeProviders(sign_wechat=wechatpay_platform.headers)
    app = Starlette(routes=[Route("/{path:path}", fake.handle, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    fake.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    yield fake
    server.should_exit = True
    await task


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def refund_gateway(tmp_path, standalone_gateway, providers, merchant_key, wechatpay_platform):
    """`async with refund_gateway(**settings) as gw`: a gateway whose providers are the fake ones."""

    def start(**overrides):
        values = dict(stripe_secret_key=STRIPE_KEY, stripe_api_base=providers.url, wechatpay_mchid=MCHID,
                      wechatpay_merchant_serial_no=SERIAL, wechatpay_merchant_private_key=_pem(merchant_key),
                      wechatpay_api_base=providers.url, wechatpay_platform_certificates=wechatpay_platform.pem,
                      refund_max_attempts=3, refund_backoff_s=0.01,
                      refund_poll_interval_s=0.05)
        values.update(overrides)
        return standalone_gateway(tmp_path, **values)

    return start


def refund_requested(request_id: str, *, provider: str = "stripe", payment_id: str = "pi_3Refund",
                     amount_fen: int = 9900) -> RefundRequested:
    return RefundRequested(
        request_id=request_id, community_id=COMMUNITY, payment_id=payment_id, provider=provider,
        payer_id="telegram:42", amount_fen=amount_fen, currency="CNY", reason_code="self_service",
        reason="不想读了", requested_at=datetime.now(UTC),
    )


async def settled(gw, outbox_events, eventually, count: int = 1) -> list:
    async def done():
        events = [e for e in await outbox_events(gw.app) if e.type.startswith("refund.")]
        return events if len(events) >= count else None

    return await eventually(done, what=f"{count} settled refunds")


async def test_stripe_refund_called_once_with_the_idempotency_key(
    refund_gateway, providers, publish, outbox_events, eventually, metric_value,
):
    async with refund_gateway() as gw:
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="stripe", outcome="failed") == 0
        assert gw.app.state.runtime.metrics.registry.get_sample_value(
            "qunzhu_gateway_refunds_total", {"provider": "stripe", "outcome": "failed"}) == 0  # exported at zero
        await publish(gw.app, "refund.requested", refund_requested("rr-1"), COMMUNITY)
        await publish(gw.app, "refund.requested", refund_requested("rr-1"), COMMUNITY)

        (event,) = await settled(gw, outbox_events, eventually)
        assert event.type == "refund.submitted" and event.community_id == COMMUNITY
        assert event.data == {**event.data, "request_id": "rr-1", "payment_id": "pi_3Refund", "provider": "stripe",
                              "amount_fen": 9900, "currency": "CNY", "outcome": "submitted", "refund_id": "re_1",
                              "attempts": 1}
        await eventually(lambda: metric_value(gw.app, "qunzhu_gateway_events_consumed_total",
                                              topic="membership.events.v1", type="refund.requested",
                                              outcome="processed") == 2, what="the repeat consumed")
        await gw.app.state.refund_worker.run_once()  # whatever is still due has run
        (call,) = providers.calls(STRIPE_PATH)
        assert call["headers"]["idempotency-key"] == "rr-1"
        assert call["headers"]["authorization"] == f"Bearer {STRIPE_KEY}"
        form = parse_qs(call["body"].decode())
        assert form["payment_intent"] == ["pi_3Refund"] and form["amount"] == ["9900"]
        assert form["reason"] == ["requested_by_customer"] and form["metadata[request_id]"] == ["rr-1"]
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="stripe", outcome="submitted") == 1
        async with gw.app.state.runtime.session_maker() as session:
            row = await session.get(RefundOrder, "rr-1")
        assert (row.status, row.provider_refund_id, row.attempts) == ("submitted", "re_1", 1)


async def test_wechatpay_request_is_signed_with_the_merchant_key(
    refund_gateway, providers, publish, outbox_events, eventually, merchant_key,
):
    async with refund_gateway() as gw:
        async with gw.app.state.runtime.session_maker() as session, session.begin():
            session.add(PaymentRef(payment_id="4200000001", provider="wechatpay", community_id=COMMUNITY,
                                   payer_id="telegram:42", plan_id="p-1", amount_fen=19900))
        await publish(gw.app, "refund.requested", refund_requested("rr-wx", provider="wechatpay",
                                                                    payment_id="4200000001", amount_fen=9900),
                      COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually)

    assert event.type == "refund.submitted"
    assert event.data["refund_id"] == "50000000382019052709732678859" and event.data["provider"] == "wechatpay"
    (call,) = providers.calls(WECHAT_PATH)
    assert json.loads(call["body"]) == {
        "transaction_id": "4200000001", "out_refund_no": "rr-wx", "reason": "不想读了",
        "amount": {"refund": 9900, "total": 19900, "currency": "CNY"},
    }
    header = call["headers"]["authorization"]
    schema, _, params = header.partition(" ")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    assert schema == "WECHATPAY2-SHA256-RSA2048"
    assert (fields["mchid"], fields["serial_no"]) == (MCHID, SERIAL)
    assert abs(int(fields["timestamp"]) - time.time()) < 60
    message = f"POST\n{WECHAT_PATH}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + call["body"] + b"\n"
    # Raises InvalidSignature unless the merchant's private key signed exactly this request.
    merchant_key.public_key().verify(base64.b64decode(fields["signature"]), message, padding.PKCS1v15(),
                                     hashes.SHA256())
    with pytest.raises(InvalidSignature):
        merchant_key.public_key().verify(base64.b64decode(fields["signature"]), message.replace(b"9900", b"9901"),
                                         padding.PKCS1v15(), hashes.SHA256())


async def test_server_errors_are_retried_with_the_same_key_then_succeed(
    refund_gateway, providers, publish, outbox_events, eventually, metric_value,
):
    providers.script[STRIPE_PATH].extend([
        (500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        (503, {"error": {"type": "api_error", "message": "Service unavailable"}}),
    ])
    async with refund_gateway() as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-retry"), COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually)
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="stripe", outcome="retried") == 2
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="stripe", outcome="submitted") == 1

    assert (event.type, event.data["attempts"], event.data["refund_id"]) == ("refund.submitted", 3, "re_3")
    calls = providers.calls(STRIPE_PATH)
    assert [c["headers"]["idempotency-key"] for c in calls] == ["rr-retry"] * 3


async def test_client_error_fails_at_once_with_the_providers_message(
    refund_gateway, providers, publish, outbox_events, eventually, metric_value,
):
    providers.script[STRIPE_PATH].append((400, {"error": {
        "type": "invalid_request_error", "code": "resource_missing", "param": "payment_intent",
        "message": "No such payment_intent: 'pi_gone'"}}))
    providers.script[WECHAT_PATH].append((400, {"code": "PARAM_ERROR", "message": "退款金额超过订单金额"}))
    async with refund_gateway() as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-400", payment_id="pi_gone"), COMMUNITY)
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-400", provider="wechatpay",
                                                                    payment_id="4200000002"), COMMUNITY)
        events = await settled(gw, outbox_events, eventually, 2)
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="stripe", outcome="failed") == 1
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="wechatpay", outcome="failed") == 1

    by_id = {e.data["request_id"]: e for e in events}
    assert {e.type for e in events} == {"refund.failed"}
    assert by_id["rr-400"].data["attempts"] == 1
    assert "No such payment_intent: 'pi_gone'" in by_id["rr-400"].data["reason"]
    assert "400" in by_id["rr-400"].data["reason"]
    assert by_id["rr-wx-400"].data["reason"] == "wechatpay 400: PARAM_ERROR: 退款金额超过订单金额"
    assert len(providers.calls(STRIPE_PATH)) == 1 and len(providers.calls(WECHAT_PATH)) == 1


async def test_already_refunded_counts_as_done(refund_gateway, providers, publish, outbox_events, eventually):
    providers.script[STRIPE_PATH].append((400, {"error": {
        "type": "invalid_request_error", "code": "charge_already_refunded",
        "message": "Charge ch_1 has already been refunded."}}))
    providers.script[WECHAT_PATH].append((403, {"code": "INVALID_REQUEST", "message": "订单已全额退款"}))
    async with refund_gateway() as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-done"), COMMUNITY)
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-done", provider="wechatpay",
                                                                    payment_id="4200000003"), COMMUNITY)
        events = await settled(gw, outbox_events, eventually, 2)

    assert {(e.type, e.data["request_id"], e.data["outcome"]) for e in events} == {
        ("refund.submitted", "rr-done", "already_refunded"), ("refund.submitted", "rr-wx-done", "already_refunded")}


async def test_manual_refund_calls_no_one(refund_gateway, providers, publish, outbox_events, eventually,
                                          metric_value):
    async with refund_gateway() as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-manual", provider="manual",
                                                                    payment_id="cash-2026-11-01"), COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually)
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="manual", outcome="manual") == 1

    assert (event.type, event.data["outcome"], event.data["refund_id"]) == ("refund.submitted", "manual", None)
    assert providers.received == []


async def test_unconfigured_provider_fails_once_with_a_clear_error(
    refund_gateway, providers, publish, outbox_events, eventually,
):
    async with refund_gateway(stripe_secret_key="", wechatpay_mchid="") as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-nostripe"), COMMUNITY)
        await publish(gw.app, "refund.requested", refund_requested("rr-nowx", provider="wechatpay",
                                                                    payment_id="4200000004"), COMMUNITY)
        events = await settled(gw, outbox_events, eventually, 2)

    reasons = {e.data["request_id"]: (e.type, e.data["attempts"], e.data["reason"]) for e in events}
    assert reasons["rr-nostripe"] == (
        "refund.failed", 1, "Stripe refunds are not configured: set GATEWAY_STRIPE_SECRET_KEY")
    assert reasons["rr-nowx"][:2] == ("refund.failed", 1)
    assert "GATEWAY_WECHATPAY_MCHID" in reasons["rr-nowx"][2]
    assert providers.received == []


async def test_unreachable_provider_is_retried_then_fails(
    refund_gateway, publish, outbox_events, eventually, metric_value,
):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    async with refund_gateway(stripe_api_base=dead, refund_max_attempts=2) as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-dead"), COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually, 1)
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="stripe", outcome="retried") == 1

    assert (event.type, event.data["attempts"]) == ("refund.failed", 2)
    assert event.data["reason"].startswith("stripe:")


async def test_an_unsigned_or_forged_wechatpay_answer_is_not_believed(
    refund_gateway, providers, publish, outbox_events, eventually, metric_value, wechatpay_platform,
):
    """Only WeChat Pay's platform key makes an accepted refund true in our books; a forged answer is retried
    (the same out_refund_no) and, while it stays forged, ends as a failure naming the signature."""
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    providers.sign_wechat = lambda body: wechatpay_platform.headers(body, key=impostor)
    async with refund_gateway(refund_max_attempts=2) as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-forged", provider="wechatpay",
                                                                    payment_id="4200000005"), COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually)
        assert metric_value(gw.app, "qunzhu_gateway_refunds_total", provider="wechatpay", outcome="retried") == 1

    assert (event.type, event.data["attempts"]) == ("refund.failed", 2)
    assert "signature does not verify (signature)" in event.data["reason"]
    assert [json.loads(c["body"])["out_refund_no"] for c in providers.calls(WECHAT_PATH)] == ["rr-wx-forged"] * 2

    # Unsigned, then genuine: the genuine answer is the one believed.
    providers.sign_wechat = None
    providers.received.clear()
    async with refund_gateway(refund_max_attempts=3) as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-late", provider="wechatpay",
                                                                    payment_id="4200000006"), COMMUNITY)

        async def unsigned_once():
            if providers.calls(WECHAT_PATH):
                providers.sign_wechat = wechatpay_platform.headers
                return True
            return None

        await eventually(unsigned_once, what="a first, unsigned answer")
        events = await settled(gw, outbox_events, eventually, 2)  # the same database: the first one's is kept
    (event,) = [e for e in events if e.data["request_id"] == "rr-wx-late"]
    assert (event.type, event.data["attempts"]) == ("refund.submitted", 2)


async def test_wechatpay_refunds_need_platform_certificates_and_send_the_notify_url(
    refund_gateway, providers, publish, outbox_events, eventually,
):
    async with refund_gateway(wechatpay_platform_certificates="") as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-nocert", provider="wechatpay",
                                                                    payment_id="4200000007"), COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually)
    assert event.type == "refund.failed" and "GATEWAY_WECHATPAY_PLATFORM_CERTIFICATES" in event.data["reason"]
    assert providers.calls(WECHAT_PATH) == []  # never asked without a way to check the answer

    notify = "https://qunzhu.example/webhooks/payments/wechatpay"
    async with refund_gateway(wechatpay_refund_notify_url=notify) as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-notify", provider="wechatpay",
                                                                    payment_id="4200000008"), COMMUNITY)
        events = await settled(gw, outbox_events, eventually, 2)  # the first gateway's failure is kept too
    assert {e.data["request_id"]: e.type for e in events}["rr-wx-notify"] == "refund.submitted"
    (call,) = providers.calls(WECHAT_PATH)
    assert json.loads(call["body"])["notify_url"] == notify


async def test_wechatpay_answers_in_public_key_mode_are_believed(
    refund_gateway, providers, publish, outbox_events, eventually, wechatpay_platform,
):
    """A merchant with the WeChat Pay public key and no platform certificate: answers signed with it (serial
    PUB_KEY_ID_…) are believed; one signed by the old platform certificate is not (none is configured)."""
    public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = "PUB_KEY_ID_0114232134912410000000000007"
    pem = public_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    providers.sign_wechat = lambda body: wechatpay_platform.headers(body, key=public_key, serial=key_id)
    async with refund_gateway(wechatpay_platform_certificates="", wechatpay_public_key=pem,
                              wechatpay_public_key_id=key_id, refund_max_attempts=1) as gw:
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-pk", provider="wechatpay",
                                                                    payment_id="4200000011"), COMMUNITY)
        (event,) = await settled(gw, outbox_events, eventually)
        assert event.type == "refund.submitted"
        providers.sign_wechat = wechatpay_platform.headers
        await publish(gw.app, "refund.requested", refund_requested("rr-wx-cert", provider="wechatpay",
                                                                    payment_id="4200000012"), COMMUNITY)
        events = await settled(gw, outbox_events, eventually, 2)
    (failed,) = [e for e in events if e.data["request_id"] == "rr-wx-cert"]
    assert failed.type == "refund.failed" and "unknown_certificate" in failed.data["reason"]
