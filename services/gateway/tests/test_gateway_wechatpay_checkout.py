"""Checkout with WeChat Pay: the gateway opens the order at a loopback stand-in of WeChat Pay's API v3 that
verifies every request's WECHATPAY2-SHA256-RSA2048 signature with the merchant's public key and signs its
answers (here in public-key mode); the notification that follows is checked with the wechatpayv3 SDK first."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from test_gateway_checkout import COMMUNITY, PAYER, Membership  # same folder, on sys.path
from test_gateway_payment_webhooks import APIV3_KEY, wechat_notification
from test_gateway_wechatpay_notifications import (
    MERCHANT_KEY,
    PUBLIC_KEY,
    PUBLIC_KEY_ID,
    URL,
    pem_private,
    pem_public,
    sdk,  # noqa: F401 - fixture
    signed,
)
from wechatpay_standin import Standin, serving, trade_bill

MCHID, MERCHANT_SERIAL, APPID = "1900000001", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", "wx8888888888888888"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NOTIFY = "https://qunzhu.example/webhooks/payments/wechatpay"


@pytest.fixture
async def standin():
    async with serving(Standin(MCHID, MERCHANT_SERIAL, MERCHANT_KEY.public_key(), PUBLIC_KEY, PUBLIC_KEY_ID)) as s:
        yield s


def wechatpay_settings(standin: Standin, **overrides) -> dict:
    return dict(
        wechatpay_mchid=MCHID, wechatpay_merchant_serial_no=MERCHANT_SERIAL,
        wechatpay_merchant_private_key=pem_private(MERCHANT_KEY), wechatpay_api_base=standin.url,
        wechatpay_appid=APPID, wechatpay_notify_url=NOTIFY, wechatpay_apiv3_key=APIV3_KEY,
        wechatpay_public_key=pem_public(PUBLIC_KEY), wechatpay_public_key_id=PUBLIC_KEY_ID, run_orders=False,
    ) | overrides


@pytest.fixture
async def gw(tmp_path, standalone_gateway, standin):
    async with standalone_gateway(tmp_path, respond=Membership(), **wechatpay_settings(standin)) as gateway:
        yield gateway


def checkout_url() -> str:
    return f"/api/v1/communities/{COMMUNITY}/checkout"


async def test_jsapi_checkout_then_the_notification_pays_the_order(gw, standin, sdk, member_headers,  # noqa: F811
                                                                   outbox_events):
    headers = {**member_headers(gw.app, PAYER), "Idempotency-Key": "jsapi-1"}
    body = {"plan_id": "yearly", "provider": "wechatpay", "channel": "jsapi", "payer_openid": OPENID}

    first = await gw.client.post(checkout_url(), json=body, headers=headers)
    again = await gw.client.post(checkout_url(), json=body, headers=headers)

    assert first.status_code == 201, first.text
    order = first.json()
    assert again.json() == order and len(standin.calls("/jsapi")) == 1  # the same order, WeChat Pay asked once
    sent = standin.orders[order["order_id"]]["body"]
    assert sent["out_trade_no"] == sent["attach"] == order["order_id"] and len(sent["attach"]) <= 128
    assert sent["amount"] == {"total": 99900, "currency": "CNY"} and sent["payer"] == {"openid": OPENID}
    assert (sent["appid"], sent["mchid"], sent["notify_url"]) == (APPID, MCHID, NOTIFY)
    assert sent["time_expire"].endswith("+08:00") and sent["description"] == "年度会员"
    # wx.requestPayment's parameters, paySign verifiable with the merchant's public key as WeChat documents
    pay = order["jsapi"]
    assert pay["package"] == f"prepay_id={standin.orders[order['order_id']]['prepay_id']}"
    assert (pay["appId"], pay["signType"]) == (APPID, "RSA")
    message = f"{pay['appId']}\n{pay['timeStamp']}\n{pay['nonceStr']}\n{pay['package']}\n".encode()
    MERCHANT_KEY.public_key().verify(base64.b64decode(pay["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())

    notification = wechat_notification("EV-PAY-1", "TRANSACTION.SUCCESS", {
        "appid": APPID, "mchid": MCHID, "out_trade_no": order["order_id"], "transaction_id": "4200000777",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "attach": order["order_id"],
        "success_time": "2026-12-07T12:00:00+08:00", "payer": {"openid": OPENID},
        "amount": {"total": 99900, "payer_total": 99900, "currency": "CNY", "payer_currency": "CNY"}})
    note_headers = signed(notification, PUBLIC_KEY, PUBLIC_KEY_ID)
    assert sdk(note_headers, notification)["resource"]["out_trade_no"] == order["order_id"]
    assert (await gw.client.post(URL, content=notification, headers=note_headers)).json()["events"] == 1
    # WeChat Pay resends a notification it got no timely answer for: the same id, signed anew.
    resent = await gw.client.post(URL, content=notification, headers=signed(notification, PUBLIC_KEY, PUBLIC_KEY_ID))
    assert resent.json() == {"status": "duplicate", "events": 0}

    (succeeded,) = await outbox_events(gw.app)
    assert (succeeded.type, succeeded.community_id) == ("payment.succeeded", COMMUNITY)
    assert (succeeded.data["payer_id"], succeeded.data["plan_id"]) == (PAYER, "yearly")
    polled = await gw.client.get(f"/api/v1/communities/{COMMUNITY}/orders/{order['order_id']}",
                                 headers=member_headers(gw.app, PAYER))
    assert polled.json()["status"] == "paid"


async def test_native_and_h5_checkouts(gw, standin, member_headers):
    headers = member_headers(gw.app, PAYER)
    native = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                        "channel": "native"}, headers=headers)
    h5 = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay", "channel": "h5"},
                              headers=headers)

    assert native.status_code == 201, native.text
    assert native.json()["code_url"].startswith("weixin://wxpay/bizpayurl")
    assert h5.status_code == 201, h5.text
    assert h5.json()["h5_url"].startswith("https://wx.tenpay.com/")
    scene = standin.orders[h5.json()["order_id"]]["body"]["scene_info"]
    assert scene == {"payer_client_ip": "127.0.0.1", "h5_info": {"type": "Wap"}}
    assert "payer" not in standin.orders[native.json()["order_id"]]["body"]
    for answer in (native, h5):  # WeChat Pay caps attach at 128 characters: it carries the order id only
        sent = standin.orders[answer.json()["order_id"]]["body"]
        assert sent["attach"] == sent["out_trade_no"] == answer.json()["order_id"] and len(sent["attach"]) <= 128


async def test_jsapi_needs_the_openid_and_nothing_is_asked_of_wechat_pay(gw, standin, member_headers):
    answer = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                        "channel": "jsapi"}, headers=member_headers(gw.app, PAYER))
    assert answer.status_code == 422 and "payer_openid" in answer.json()["detail"]
    assert standin.requests == []


async def test_an_unsigned_answer_is_not_believed(gw, standin, member_headers):
    standin.sign_answers = False
    answer = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                        "channel": "native"}, headers=member_headers(gw.app, PAYER))
    assert answer.status_code == 502 and "signature" in answer.json()["detail"]
    assert len(standin.calls("/native")) == 1


async def test_an_expired_order_is_closed_at_wechat_pay(gw, standin, member_headers):
    from gateway.models import PaymentOrder
    from qunzhu_common.timeutil import utcnow

    opened = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                        "channel": "native"}, headers=member_headers(gw.app, PAYER))
    order_id = opened.json()["order_id"]
    async with gw.app.state.runtime.session_maker() as session, session.begin():
        (await session.get(PaymentOrder, order_id)).expires_at = utcnow() - timedelta(seconds=1)

    assert await gw.app.state.orders.expire_due() == 1

    assert [c["path"] for c in standin.calls("/close")] == [f"/v3/pay/transactions/out-trade-no/{order_id}/close"]
    assert standin.orders[order_id]["closed"]
    async with gw.app.state.runtime.session_maker() as session:
        assert (await session.get(PaymentOrder, order_id)).status == "expired"


async def test_not_configured_is_refused_before_any_order(tmp_path, standalone_gateway, standin, member_headers):
    async with standalone_gateway(tmp_path, respond=Membership(),
                                  **wechatpay_settings(standin, wechatpay_appid="")) as gw:
        answer = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                            "channel": "native"}, headers=member_headers(gw.app, PAYER))
    assert answer.status_code == 502 and "GATEWAY_WECHATPAY_APPID" in answer.json()["detail"]
    assert standin.requests == []


async def test_the_stand_in_refuses_a_request_not_signed_by_the_merchant(tmp_path, standalone_gateway, standin,
                                                                          member_headers):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with standalone_gateway(tmp_path, respond=Membership(), **wechatpay_settings(
            standin, wechatpay_merchant_private_key=pem_private(other))) as gw:
        answer = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                            "channel": "native"}, headers=member_headers(gw.app, PAYER))
    assert answer.status_code == 502 and "SIGN_ERROR" in answer.json()["detail"]
    assert standin.orders == {}


async def test_reconciliation_with_the_trade_bill(gw, standin, member_headers, admin_headers, metric_value):
    """The bill of 2026-12-06 (China) against our records: one paid order matches; a payment and a refund
    only WeChat Pay knows, and an order paid here that the bill lacks, are reported, each once."""
    from datetime import datetime

    from gateway.models import PaymentOrder
    from gateway.orders import reconcile

    opened = await gw.client.post(checkout_url(), json={"plan_id": "yearly", "provider": "wechatpay",
                                                        "channel": "native"}, headers=member_headers(gw.app, PAYER))
    order_id = opened.json()["order_id"]
    paid = wechat_notification("EV-BILL-1", "TRANSACTION.SUCCESS", {
        "out_trade_no": order_id, "transaction_id": "4200000801", "trade_state": "SUCCESS", "attach": order_id,
        "success_time": "2026-12-06T12:00:00+08:00", "amount": {"total": 99900, "currency": "CNY"}})
    assert (await gw.client.post(URL, content=paid, headers=signed(paid, PUBLIC_KEY, PUBLIC_KEY_ID))).json()[
        "status"] == "accepted"
    async with gw.app.state.runtime.session_maker() as session, session.begin():
        session.add(PaymentOrder(
            id="qz" + "c" * 24, community_id=COMMUNITY, plan_id="yearly", payer_id=PAYER, provider="wechatpay",
            channel="native", kind="new", amount_fen=99900, currency="CNY", request_hash="0" * 64, status="paid",
            provider_payment_id="4200000802", paid_amount_fen=99900, paid_currency="CNY",
            paid_at=datetime.fromisoformat("2026-12-06T15:00:00+08:00"),
            expires_at=datetime.fromisoformat("2026-12-06T15:30:00+08:00")))
    standin.bills["2026-12-06"] = trade_bill([
        {"transaction_id": "4200000801", "out_trade_no": order_id, "yuan": "999.00"},
        {"transaction_id": "4200000803", "out_trade_no": "elsewhere-0001", "yuan": "9.90"},
        {"transaction_id": "4200000801", "out_trade_no": order_id, "yuan": "999.00", "out_refund_no": "rf-bill-1",
         "refund_yuan": "100.00"},
    ])
    now = datetime.fromisoformat("2026-12-07T12:00:00+08:00")  # the window holds exactly 2026-12-06 (China)
    orders = gw.app.state.orders

    found = await reconcile.run(gw.app.state.runtime.session_maker, orders.deps, gw.app.state.gateway.metrics, now=now)
    await reconcile.run(gw.app.state.runtime.session_maker, orders.deps, gw.app.state.gateway.metrics, now=now)

    assert sorted((d.kind, d.reference) for d in found["wechatpay"]) == [
        ("payment_missing_at_provider", "4200000802"), ("payment_missing_here", "4200000803"),
        ("refund_missing_here", "rf-bill-1")]
    tradebill = standin.calls("/v3/bill/tradebill")
    assert tradebill[0]["url"] == "/v3/bill/tradebill?bill_date=2026-12-06&bill_type=ALL"
    assert len(standin.calls("/download/")) == 2  # each download signed too (the stand-in checks it)
    listed = (await gw.client.get("/api/v1/ops/reconciliation", headers=admin_headers)).json()
    assert sorted(d["kind"] for d in listed["data"] if d["provider"] == "wechatpay") == [
        "payment_missing_at_provider", "payment_missing_here", "refund_missing_here"]  # stored once
    assert metric_value(gw.app, "qunzhu_gateway_reconciliation_differences", provider="wechatpay",
                        kind="refund_missing_here") == 1
    assert metric_value(gw.app, "qunzhu_gateway_reconciliation_differences", provider="wechatpay",
                        kind="payment_amount_differs") == 0
