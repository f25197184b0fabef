"""Payment webhooks: Stripe (official library) and WeChat Pay API v3 with generated keys and certificates."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import stripe
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

STRIPE_SECRET = "whsec_test_current"
STRIPE_OLD = "whsec_test_previous"
APIV3_KEY = "0123456789abcdef0123456789abcdef"
META = {"community_id": "c-1", "plan_id": "yearly", "payer_id": "telegram:42"}


OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def gw(tmp_path, standalone_gateway, wechatpay_platform):
    async with standalone_gateway(
        tmp_path, stripe_webhook_secrets=[STRIPE_SECRET, STRIPE_OLD], wechatpay_apiv3_key=APIV3_KEY,
        wechatpay_platform_certificates=wechatpay_platform.pem,
    ) as gateway:
        yield gateway


def stripe_event(event_id: str, type_: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": type_, "created": 1_790_000_000,
                       "data": {"object": obj}}).encode()


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET, at: int | None = None) -> dict:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at or int(time.time()))
    return {"Stripe-Signature": header, "content-type": "application/json"}


async def test_stripe_payment_then_refund(gw, outbox_events, metric_value):
    url = "/webhooks/payments/stripe"
    paid = stripe_event("evt_1", "checkout.session.completed", {
        "id": "cs_1", "payment_intent": "pi_1", "payment_status": "paid", "amount_total": 99900,
        "currency": "cny", "metadata": {**META, "referrer_id": "telegram:7"}})
    refund = stripe_event("evt_2", "charge.refunded", {
        "id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 99900, "currency": "cny",
        "refunds": {"data": [{"id": "re_1", "reason": "requested_by_customer"}]}})

    first = await gw.client.post(url, content=paid, headers=stripe_headers(paid))
    replay = await gw.client.post(url, content=paid, headers=stripe_headers(paid))
    rotated = await gw.client.post(url, content=refund, headers=stripe_headers(refund, STRIPE_OLD))

    assert first.json() == {"status": "accepted", "events": 1}
    assert replay.json()["status"] == "duplicate"
    assert rotated.json() == {"status": "accepted", "events": 1}
    succeeded, refunded = await outbox_events(gw.app)
    assert (succeeded.type, succeeded.community_id) == ("payment.succeeded", "c-1")
    assert succeeded.data | {"paid_at": None} == {
        "payment_id": "pi_1", "provider": "stripe", "payer_id": "telegram:42", "plan_id": "yearly",
        "amount_fen": 99900, "currency": "CNY", "referrer_id": "telegram:7", "paid_at": None}
    # The refund does not name the community: the gateway remembered it from the payment.
    assert (refunded.type, refunded.community_id) == ("payment.refunded", "c-1")
    assert refunded.data["refund_id"] == "re_1"


async def test_stripe_bad_signatures_are_401(gw, outbox_events, metric_value):
    url = "/webhooks/payments/stripe"
    body = stripe_event("evt_1", "payment_intent.succeeded", {"id": "pi_1", "amount_received": 100, "metadata": META})

    forged = await gw.client.post(url, content=body, headers=stripe_headers(body, "whsec_wrong"))
    stale = await gw.client.post(url, content=body, headers=stripe_headers(body, at=int(time.time()) - 301))
    missing = await gw.client.post(url, content=body)

    assert (forged.status_code, stale.status_code, missing.status_code) == (401, 401, 401)
    assert stale.json()["reason"] == "timestamp"
    assert await outbox_events(gw.app) == []
    name = "qunzhu_gateway_webhook_verification_failures_total"
    assert metric_value(gw.app, name, platform="stripe", reason="signature") == 1
    assert metric_value(gw.app, name, platform="stripe", reason="timestamp") == 1


async def test_stripe_event_without_metadata_is_quarantined(gw, outbox_events):
    body = stripe_event("evt_9", "payment_intent.succeeded", {"id": "pi_9", "amount_received": 100, "metadata": {}})
    response = await gw.client.post("/webhooks/payments/stripe", content=body, headers=stripe_headers(body))
    assert response.json()["status"] == "quarantined"
    assert await outbox_events(gw.app) == []


def wechat_notification(event_id: str, event_type: str, resource: dict, *, key: str = APIV3_KEY) -> bytes:
    nonce = base64.b64encode(os.urandom(9)).decode()[:12]
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), b"transaction")
    return json.dumps({
        "id": event_id, "create_time": "2026-11-26T20:00:00+08:00", "resource_type": "encrypt-resource",
        "event_type": event_type, "summary": "支付成功", "resource": {
            "original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": "transaction", "nonce": nonce},
    }, ensure_ascii=False).encode()


@pytest.fixture
def wechat_headers(wechatpay_platform):
    """`wechat_headers(body, key=…, serial=…, at=…)`: a notification's headers, signed by the platform."""
    return lambda body, **forged: {**wechatpay_platform.headers(body, **forged), "content-type": "application/json"}


TRANSACTION = {
    "out_trade_no": "order-1", "transaction_id": "4200000001", "trade_state": "SUCCESS",
    "success_time": "2026-11-26T20:00:00+08:00", "amount": {"total": 19900, "currency": "CNY"},
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "attach": json.dumps(META),
}


async def test_wechatpay_payment_then_refund(gw, outbox_events, wechat_headers):
    url = "/webhooks/payments/wechatpay"
    paid = wechat_notification("EV-1", "TRANSACTION.SUCCESS", TRANSACTION)
    refund = wechat_notification("EV-2", "REFUND.SUCCESS", {
        "transaction_id": "4200000001", "refund_id": "50000001", "refund_status": "SUCCESS",
        "success_time": "2026-11-27T10:00:00+08:00", "amount": {"refund": 19900, "currency": "CNY"}})

    first = await gw.client.post(url, content=paid, headers=wechat_headers(paid))
    replay = await gw.client.post(url, content=paid, headers=wechat_headers(paid))
    refunded = await gw.client.post(url, content=refund, headers=wechat_headers(refund))

    assert first.json() == {"status": "accepted", "events": 1}
    assert replay.json()["status"] == "duplicate"
    assert refunded.json()["events"] == 1
    succeeded, refund_event = await outbox_events(gw.app)
    assert succeeded.data["payment_id"] == "4200000001"
    assert succeeded.data["amount_fen"] == 19900
    assert succeeded.data["provider"] == "wechatpay"
    assert (refund_event.type, refund_event.community_id) == ("payment.refunded", "c-1")


async def test_wechatpay_verification_failures(gw, outbox_events, metric_value, wechat_headers):
    url = "/webhooks/payments/wechatpay"
    body = wechat_notification("EV-1", "TRANSACTION.SUCCESS", TRANSACTION)

    wrong_key = await gw.client.post(url, content=body, headers=wechat_headers(body, key=OTHER_KEY))
    unknown_cert = await gw.client.post(url, content=body, headers=wechat_headers(body, key=OTHER_KEY, serial="1234"))
    tampered = await gw.client.post(url, content=body.replace(b"EV-1", b"EV-7"), headers=wechat_headers(body))
    stale = await gw.client.post(url, content=body, headers=wechat_headers(body, at=int(time.time()) - 600))

    assert [r.status_code for r in (wrong_key, unknown_cert, tampered, stale)] == [401] * 4
    assert [r.json()["reason"] for r in (wrong_key, unknown_cert, tampered, stale)] == [
        "signature", "unknown_certificate", "signature", "timestamp"]
    assert await outbox_events(gw.app) == []
    assert {r.json()["code"] for r in (wrong_key, unknown_cert, tampered, stale)} == {"FAIL"}  # WeChat Pay's own
    # Signed by the platform but encrypted with another APIv3 key: authentic, our key is wrong → 503, retried.
    other = wechat_notification("EV-3", "TRANSACTION.SUCCESS", TRANSACTION, key="f" * 32)
    retried = await gw.client.post(url, content=other, headers=wechat_headers(other))
    assert retried.status_code == 503 and retried.json()["code"] == "FAIL"
    assert metric_value(gw.app, "qunzhu_gateway_webhook_retries_requested_total", platform="wechatpay",
                        reason="cannot_decrypt") == 1
