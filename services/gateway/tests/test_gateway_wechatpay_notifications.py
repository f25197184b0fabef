"""WeChat Pay notifications as WeChat Pay sends them, each checked first with the `wechatpayv3` SDK's own
callback verifier: public-key mode (PUB_KEY_ID_…) beside platform certificates, a wrong APIv3 key answered
503 FAIL until it is fixed (then the provider's retry succeeds and a kept one is replayed by ops)."""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr
from test_gateway_payment_webhooks import APIV3_KEY, TRANSACTION, wechat_notification  # same folder, on sys.path
from wechatpayv3.core import Core

URL = "/webhooks/payments/wechatpay"
PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000001"
PUBLIC_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MERCHANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_public(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def signed(body: bytes, key: rsa.RSAPrivateKey, serial: str, *, at: int | None = None) -> dict[str, str]:
    stamp, nonce = str(at or int(time.time())), secrets.token_hex(16)
    signature = key.sign(f"{stamp}\n{nonce}\n".encode() + body + b"\n", padding.PKCS1v15(), hashes.SHA256())
    return {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "content-type": "application/json"}


@pytest.fixture
def sdk(tmp_path, wechatpay_platform):
    """`sdk(headers, body)`: what the wechatpayv3 SDK makes of a notification (None: refused), with the APIv3
    key WeChat Pay really used, knowing both the platform certificate and the WeChat Pay public key."""
    certs = tmp_path / "wechatpay-certs"
    certs.mkdir()
    (certs / f"{wechatpay_platform.serial}.pem").write_text(wechatpay_platform.pem)
    by_certificate = Core("1900000001", "MERCHANTSERIAL", pem_private(MERCHANT_KEY), APIV3_KEY, cert_dir=str(certs))
    by_public_key = Core("1900000001", "MERCHANTSERIAL", pem_private(MERCHANT_KEY), APIV3_KEY,
                         public_key=pem_public(PUBLIC_KEY), public_key_id=PUBLIC_KEY_ID)

    def check(headers: dict[str, str], body: bytes):
        core = by_public_key if headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_") else by_certificate
        return core.callback(headers, body)

    return check


@pytest.fixture
async def gw(tmp_path, standalone_gateway, wechatpay_platform):
    """Certificates and the public key at once, as during a merchant's migration; the APIv3 key is wrong."""
    async with standalone_gateway(
        tmp_path, wechatpay_apiv3_key="f" * 32, wechatpay_platform_certificates=wechatpay_platform.pem,
        wechatpay_public_key=pem_public(PUBLIC_KEY), wechatpay_public_key_id=PUBLIC_KEY_ID,
    ) as gateway:
        yield gateway


def fix_the_key(gw) -> None:
    gw.app.state.gateway.settings.wechatpay_apiv3_key = SecretStr(APIV3_KEY)


async def test_public_key_mode_beside_platform_certificates(gw, sdk, wechatpay_platform, outbox_events):
    fix_the_key(gw)
    by_key = wechat_notification("EV-PK", "TRANSACTION.SUCCESS", TRANSACTION)
    by_cert = wechat_notification("EV-CERT", "TRANSACTION.SUCCESS", {**TRANSACTION, "transaction_id": "4200000002"})
    key_headers = signed(by_key, PUBLIC_KEY, PUBLIC_KEY_ID)
    cert_headers = signed(by_cert, wechatpay_platform.key, wechatpay_platform.serial)
    assert sdk(key_headers, by_key)["resource"]["transaction_id"] == "4200000001"
    assert sdk(cert_headers, by_cert) is not None

    accepted = await gw.client.post(URL, content=by_key, headers=key_headers)
    assert accepted.json() == {"status": "accepted", "events": 1}
    assert (await gw.client.post(URL, content=by_cert, headers=cert_headers)).json()["status"] == "accepted"
    assert [e.data["payment_id"] for e in await outbox_events(gw.app)] == ["4200000001", "4200000002"]

    unknown = await gw.client.post(URL, content=by_key, headers=signed(by_key, PUBLIC_KEY, "PUB_KEY_ID_0000000000"))
    forged = await gw.client.post(URL, content=by_key, headers=signed(by_key, wechatpay_platform.key, PUBLIC_KEY_ID))
    assert (unknown.status_code, unknown.json()["reason"]) == (401, "unknown_certificate")
    assert unknown.json()["code"] == "FAIL"
    assert (forged.status_code, forged.json()["reason"]) == (401, "signature")
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def test_wrong_apiv3_key_is_retried_then_the_kept_one_is_replayed(
    gw, sdk, admin_headers, outbox_events, metric_value,
):
    first = wechat_notification("EV-1", "TRANSACTION.SUCCESS", TRANSACTION)
    given_up = wechat_notification("EV-2", "TRANSACTION.SUCCESS", {**TRANSACTION, "transaction_id": "4200000002"})
    first_headers = signed(first, PUBLIC_KEY, PUBLIC_KEY_ID)
    given_up_headers = signed(given_up, PUBLIC_KEY, PUBLIC_KEY_ID)
    assert sdk(first_headers, first) is not None and sdk(given_up_headers, given_up) is not None  # genuine

    answers = [await gw.client.post(URL, content=body, headers=headers)
               for body, headers in ((first, first_headers), (first, first_headers), (given_up, given_up_headers))]
    assert [a.status_code for a in answers] == [503] * 3
    assert answers[0].json()["code"] == "FAIL" and "APIv3" in answers[0].json()["message"]
    assert await outbox_events(gw.app) == []
    assert metric_value(gw.app, "qunzhu_gateway_webhook_retries_requested_total", platform="wechatpay",
                        reason="cannot_decrypt") == 3
    kept = (await gw.client.get("/api/v1/ops/quarantine", params={"source": "wechatpay"}, headers=admin_headers)).json()
    assert sorted(q["delivery_id"] for q in kept["data"]) == ["EV-1", "EV-2"]  # one copy each, not one per retry
    assert all(q["retry_requested"] and q["replayable"] for q in kept["data"])

    fix_the_key(gw)
    retried = await gw.client.post(URL, content=first, headers=first_headers)  # WeChat Pay's next retry
    assert retried.json() == {"status": "accepted", "events": 1}
    kept = (await gw.client.get("/api/v1/ops/quarantine", params={"source": "wechatpay"}, headers=admin_headers)).json()
    assert [q["delivery_id"] for q in kept["data"]] == ["EV-2"]  # the retried one is no longer kept

    replay_url = f"/api/v1/ops/quarantine/{kept['data'][0]['id']}/replay"
    assert (await gw.client.post(replay_url)).status_code == 401  # platform operators only
    replayed = await gw.client.post(replay_url, headers=admin_headers)
    again = await gw.client.post(replay_url, headers=admin_headers)
    resent = await gw.client.post(URL, content=given_up, headers=signed(given_up, PUBLIC_KEY, PUBLIC_KEY_ID))

    assert replayed.json() == {"status": "accepted", "events": 1, "reason": ""}
    assert again.status_code == 404  # the row was consumed
    assert resent.json()["status"] == "duplicate"  # deduplicated as usual
    assert [e.data["payment_id"] for e in await outbox_events(gw.app)] == ["4200000001", "4200000002"]
    assert metric_value(gw.app, "qunzhu_gateway_quarantine_replays_total", platform="wechatpay",
                        outcome="accepted") == 1


async def test_replay_reverifies_without_the_freshness_window(gw, admin_headers, outbox_events):
    """A day-old notification is replayed on its signature; a stored body that was altered is not."""
    from gateway.models import QuarantinedWebhook

    fix_the_key(gw)
    body = wechat_notification("EV-OLD", "TRANSACTION.SUCCESS", TRANSACTION)
    headers = {k.lower(): v for k, v in signed(body, PUBLIC_KEY, PUBLIC_KEY_ID, at=int(time.time()) - 86400).items()
               if k != "content-type"}
    async with gw.app.state.runtime.session_maker() as session, session.begin():
        old = QuarantinedWebhook(source="wechatpay", platform="wechatpay", delivery_id="EV-OLD", reason="test",
                                 payload=body, headers=headers)
        altered = QuarantinedWebhook(source="wechatpay", platform="wechatpay", delivery_id="EV-ALT", reason="test",
                                     payload=body.replace(b"EV-OLD", b"EV-ALT"), headers=headers)
        unsigned = QuarantinedWebhook(source="wechatpay", platform="wechatpay", delivery_id="EV-NOH", reason="old",
                                      payload=body)
        chat = QuarantinedWebhook(source="chat:x", platform="generic", delivery_id="m1", reason="test", payload=b"{}")
        session.add_all([old, altered, unsigned, chat])
    ids = [old.id, altered.id, unsigned.id, chat.id]

    answers = [await gw.client.post(f"/api/v1/ops/quarantine/{i}/replay", headers=admin_headers) for i in ids]

    assert answers[0].json()["status"] == "accepted"
    assert (answers[1].status_code, answers[1].json()["reason"]) == (401, "signature")
    assert [a.status_code for a in answers[2:]] == [409, 409]
    assert [e.data["payment_id"] for e in await outbox_events(gw.app)] == ["4200000001"]
    left = (await gw.client.get("/api/v1/ops/quarantine", headers=admin_headers)).json()
    assert sorted(q["delivery_id"] for q in left["data"]) == ["EV-ALT", "EV-NOH", "m1"]  # a refused replay keeps it


async def test_a_quarantined_notification_replayed_while_still_malformed_is_quarantined_again(
    gw, admin_headers, wechatpay_platform, outbox_events,
):
    fix_the_key(gw)
    body = wechat_notification("EV-BAD", "TRANSACTION.SUCCESS", {**TRANSACTION, "attach": json.dumps({"x": 1})})
    first = await gw.client.post(URL, content=body, headers=signed(body, wechatpay_platform.key,
                                                                    wechatpay_platform.serial))
    assert first.json()["status"] == "quarantined"
    listed = (await gw.client.get("/api/v1/ops/quarantine", headers=admin_headers)).json()["data"]
    assert listed[0]["replayable"] and not listed[0]["retry_requested"]

    replayed = await gw.client.post(f"/api/v1/ops/quarantine/{listed[0]['id']}/replay", headers=admin_headers)

    assert replayed.json()["status"] == "quarantined" and "attach" in replayed.json()["reason"]
    relisted = (await gw.client.get("/api/v1/ops/quarantine", headers=admin_headers)).json()["data"]
    assert [q["delivery_id"] for q in relisted] == ["EV-BAD"]  # consumed and written again
    assert await outbox_events(gw.app) == []


# -- notifications → orders (out_trade_no), refunds by out_refund_no -----------------------------------

ORDER_ID = "qz0123456789abcdef01234567"


async def add_order(gw, order_id: str = ORDER_ID, *, amount_fen: int = 19900) -> None:
    from datetime import timedelta

    from gateway.models import PaymentOrder
    from qunzhu_common.timeutil import utcnow

    async with gw.app.state.runtime.session_maker() as session, session.begin():
        session.add(PaymentOrder(
            id=order_id, community_id="c-9", plan_id="monthly", payer_id="wecom:alice", provider="wechatpay",
            channel="jsapi", kind="new", amount_fen=amount_fen, currency="CNY", request_hash="0" * 64,
            expires_at=utcnow() + timedelta(minutes=30)))


async def order_status(gw, order_id: str = ORDER_ID) -> str:
    from gateway.models import PaymentOrder

    async with gw.app.state.runtime.session_maker() as session:
        return (await session.get(PaymentOrder, order_id)).status


def paid(event_id: str, *, order_id: str = ORDER_ID, total: int = 19900, transaction_id: str = "4200000009") -> bytes:
    """What WeChat Pay sends for an order Qunzhu opened: attach is the order id only (no metadata)."""
    return wechat_notification(event_id, "TRANSACTION.SUCCESS", {
        "out_trade_no": order_id, "transaction_id": transaction_id, "trade_state": "SUCCESS", "attach": order_id,
        "success_time": "2026-12-07T10:00:00+08:00", "amount": {"total": total, "payer_total": total,
                                                                "currency": "CNY", "payer_currency": "CNY"},
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "trade_type": "JSAPI"})


def refunded(event_id: str, kind: str, out_refund_no: str, refund: int, *, order_id: str = ORDER_ID) -> bytes:
    return wechat_notification(event_id, kind, {
        "mchid": "1900000001", "out_trade_no": order_id, "transaction_id": "4200000009",
        "out_refund_no": out_refund_no, "refund_id": f"5030{out_refund_no[-4:]}",
        "refund_status": kind.removeprefix("REFUND."), "success_time": "2026-12-08T10:00:00+08:00",
        "user_received_account": "支付用户零钱", "amount": {"total": 19900, "refund": refund, "payer_total": 19900,
                                                      "payer_refund": refund}})


async def post(gw, body: bytes, wechatpay_platform):
    return await gw.client.post(URL, content=body, headers=signed(body, wechatpay_platform.key,
                                                                   wechatpay_platform.serial))


async def test_an_order_is_paid_by_out_trade_no_and_refunds_before_it_are_held_then_applied(
    gw, sdk, wechatpay_platform, outbox_events,
):
    fix_the_key(gw)
    await add_order(gw)
    first = refunded("EV-R1", "REFUND.SUCCESS", "rf-0001", 5000)
    same_refund_again = refunded("EV-R1b", "REFUND.SUCCESS", "rf-0001", 5000)  # another notification id
    second = refunded("EV-R2", "REFUND.SUCCESS", "rf-0002", 4900)
    payment = paid("EV-P1")
    assert all(sdk(signed(b, wechatpay_platform.key, wechatpay_platform.serial), b)
               for b in (first, same_refund_again, second, payment))

    early = [await post(gw, b, wechatpay_platform) for b in (first, same_refund_again)]
    assert [a.json() for a in early] == [{"status": "ignored", "events": 0}] * 2  # held, never quarantined
    assert (await post(gw, payment, wechatpay_platform)).json() == {"status": "accepted", "events": 2}
    assert (await post(gw, second, wechatpay_platform)).json()["events"] == 1

    events = await outbox_events(gw.app)
    assert [(e.type, e.community_id) for e in events] == [
        ("payment.succeeded", "c-9"), ("payment.refunded", "c-9"), ("payment.refunded", "c-9")]
    assert events[0].data | {"paid_at": None} == {
        "payment_id": "4200000009", "provider": "wechatpay", "payer_id": "wecom:alice", "plan_id": "monthly",
        "amount_fen": 19900, "currency": "CNY", "referrer_id": None, "paid_at": None}
    assert [(e.data["refund_id"], e.data["amount_fen"]) for e in events[1:]] == [("rf-0001", 5000), ("rf-0002", 4900)]
    assert await order_status(gw) == "paid"


async def test_an_amount_that_differs_from_the_order_is_held_for_review(gw, wechatpay_platform, outbox_events,
                                                                       metric_value):
    fix_the_key(gw)
    await add_order(gw)
    answer = await post(gw, paid("EV-P2", total=1), wechatpay_platform)
    assert answer.json()["status"] == "ignored"
    assert await outbox_events(gw.app) == []
    assert await order_status(gw) == "review"
    assert metric_value(gw.app, "qunzhu_gateway_payment_reviews_total", provider="wechatpay", reason="amount") == 1


async def test_an_order_of_ours_not_known_yet_is_retried_not_quarantined(gw, wechatpay_platform, metric_value):
    fix_the_key(gw)
    answer = await post(gw, paid("EV-P3", order_id="qz" + "9" * 24), wechatpay_platform)
    assert (answer.status_code, answer.json()["code"]) == (503, "FAIL")
    assert metric_value(gw.app, "qunzhu_gateway_webhook_retries_requested_total", platform="wechatpay",
                        reason="order_unknown") == 1
    await add_order(gw, "qz" + "9" * 24)  # the order's transaction commits; WeChat Pay's retry then succeeds
    assert (await post(gw, paid("EV-P3", order_id="qz" + "9" * 24), wechatpay_platform)).json()["status"] == "accepted"


async def test_an_abnormal_or_closed_refund_that_qunzhu_asked_for_fails_it(gw, wechatpay_platform, outbox_events):
    from gateway.models import RefundOrder

    fix_the_key(gw)
    async with gw.app.state.runtime.session_maker() as session, session.begin():
        session.add(RefundOrder(request_id="rq-abnormal", community_id="c-9", payment_id="4200000009",
                                provider="wechatpay", amount_fen=19900, currency="CNY", status="submitted"))
    abnormal = await post(gw, refunded("EV-A1", "REFUND.ABNORMAL", "rq-abnormal", 19900), wechatpay_platform)
    closed = await post(gw, refunded("EV-A2", "REFUND.CLOSED", "rq-abnormal", 19900), wechatpay_platform)
    foreign = await post(gw, refunded("EV-A3", "REFUND.CLOSED", "made-by-hand-1", 100), wechatpay_platform)

    assert [a.json()["events"] for a in (abnormal, closed, foreign)] == [1, 0, 0]
    (failed,) = await outbox_events(gw.app)
    assert (failed.type, failed.community_id, failed.data["request_id"]) == ("refund.failed", "c-9", "rq-abnormal")
    assert "ABNORMAL" in failed.data["reason"]
    async with gw.app.state.runtime.session_maker() as session:
        assert (await session.get(RefundOrder, "rq-abnormal")).status == "failed"


async def test_fields_too_long_to_store_are_quarantined(gw, wechatpay_platform, outbox_events):
    fix_the_key(gw)
    await add_order(gw)
    long_id = wechat_notification("EV-L1", "TRANSACTION.SUCCESS", {
        "out_trade_no": ORDER_ID, "transaction_id": "4" * 201, "trade_state": "SUCCESS", "attach": ORDER_ID,
        "amount": {"total": 19900, "currency": "CNY"}})
    odd_currency = wechat_notification("EV-L2", "TRANSACTION.SUCCESS", {
        "out_trade_no": ORDER_ID, "transaction_id": "4200000010", "trade_state": "SUCCESS", "attach": ORDER_ID,
        "amount": {"total": 19900, "currency": "YUAN"}})
    answers = [await post(gw, b, wechatpay_platform) for b in (long_id, odd_currency)]
    assert [a.json()["status"] for a in answers] == ["quarantined", "quarantined"]
    assert await outbox_events(gw.app) == [] and await order_status(gw) == "created"
