"""The WeChat Pay channels: API v3 orders `/v3/pay/transactions/jsapi | native | h5`, and close-order.

Each call is signed WECHATPAY2-SHA256-RSA2048 with the merchant's API key (refunds.wechatpay_api, shared
with refunds) and each answer is believed only once WeChat Pay's signature on it verifies (platform
certificate or WeChat Pay public key). out_trade_no is our order id and `attach` is that id only (WeChat
Pay caps attach at 128 characters); amount {total in fen, currency}, notify_url and time_expire come from the
order and settings. WeChat Pay answers a repeated out_trade_no with identical parameters with the same
prepay_id, so a retried checkout is idempotent.

- jsapi (mini-program, official account): needs the payer's openid; answers the `wx.requestPayment`
  parameters {appId, timeStamp, nonceStr, package: "prepay_id=…", signType: "RSA", paySign}, paySign being
  RSA-SHA256 with the merchant key over "appId\\ntimeStamp\\nnonceStr\\npackage\\n".
- native: answers the code_url to show as a QR code.
- h5: scene_info.payer_client_ip is the caller's address; answers the h5_url.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import timedelta, timezone
from typing import Any, ClassVar

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from gateway.errors import WebhookUnauthorized
from gateway.models import PaymentOrder
from gateway.orders.channels import ChannelDeps, Checkout, Opened, ProviderRefused, ProviderUnavailable, register
from gateway.refunds import wechatpay_api
from gateway.refunds.wechatpay_api import Merchant
from qunzhu_common.errors import InvalidInput

CLIENT = "wechatpay"
CHINA = timezone(timedelta(hours=8))
DESCRIPTION_MAX_BYTES = 127  # description: string[1,127]; counted in UTF-8 bytes to be safe with 中文


def merchant_of(deps: ChannelDeps) -> Merchant:
    merchant = deps.clients.get(CLIENT)
    if not isinstance(merchant, Merchant):
        raise ProviderRefused(merchant if isinstance(merchant, str) else wechatpay_api.NOT_CONFIGURED)
    return merchant


def description(name: str, fallback: str) -> str:
    text = (name.strip() or fallback)
    while len(text.encode()) > DESCRIPTION_MAX_BYTES:
        text = text[:-1]
    return text


def order_body(deps: ChannelDeps, merchant: Merchant, order: PaymentOrder, checkout: Checkout,
               channel: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": deps.settings.wechatpay_appid, "mchid": merchant.mchid,
        "description": description(checkout.plan_name, order.plan_id), "out_trade_no": order.id,
        "time_expire": order.expires_at.astimezone(CHINA).isoformat(timespec="seconds"),
        "attach": order.id, "notify_url": deps.settings.wechatpay_notify_url,
        "amount": {"total": order.amount_fen, "currency": order.currency},
    }
    if channel == "jsapi":
        body["payer"] = {"openid": checkout.payer_openid}
    if channel == "h5":
        body["scene_info"] = {"payer_client_ip": checkout.client_ip, "h5_info": {"type": "Wap"}}
    return body


def pay_sign(merchant: Merchant, app_id: str, prepay_id: str, *, timestamp: int | None = None,
             nonce: str | None = None) -> dict[str, str]:
    """The `wx.requestPayment` parameters for a prepay_id, signed with the merchant's API key."""
    params = {"appId": app_id, "timeStamp": str(timestamp if timestamp is not None else int(time.time())),
              "nonceStr": nonce or secrets.token_hex(16), "package": f"prepay_id={prepay_id}", "signType": "RSA"}
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    signature = merchant.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return params | {"paySign": base64.b64encode(signature).decode()}


async def call(deps: ChannelDeps, merchant: Merchant, path: str, body: dict[str, Any] | None = None, *,
               method: str = "POST") -> dict[str, Any]:
    """A signed request (`path` with its query); the verified JSON answer (empty for 204).
    ProviderUnavailable (retry) or ProviderRefused (WeChat Pay said no) otherwise."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else b""
    headers = {"Authorization": wechatpay_api.authorization(merchant, method, path, content),
               "Accept": "application/json", "User-Agent": "qunzhu-gateway"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = await deps.http.request(method, merchant.api_base.rstrip("/") + path, content=content or None,
                                           headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"wechatpay: {type(exc).__name__}") from None
    try:
        answer = response.json() if response.content else {}
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    if not response.is_success:
        code, message = str(answer.get("code") or ""), str(answer.get("message") or response.text[:300])
        error = f"wechatpay {response.status_code}: {code + ': ' if code else ''}{message}"
        if response.status_code >= 500 or response.status_code == 429 or code == "SYSTEM_ERROR":
            raise ProviderUnavailable(error)
        raise ProviderRefused(error, code=code or None)
    try:
        wechatpay_api.check_answer(response, merchant)
    except WebhookUnauthorized as exc:
        raise ProviderUnavailable(f"wechatpay {response.status_code}: the answer's signature does not verify "
                                  f"({exc.reason}); not believed") from None
    return answer


class WechatpayChannel:
    provider: ClassVar[str] = "wechatpay"

    def __init__(self, channel: str, answer_key: str) -> None:
        self.channel = channel  # type: ignore[misc]
        self.path = f"/v3/pay/transactions/{channel}"
        self.answer_key = answer_key

    def check(self, deps: ChannelDeps, checkout: Checkout) -> None:
        merchant_of(deps)
        missing = [name for name, value in (("GATEWAY_WECHATPAY_APPID", deps.settings.wechatpay_appid),
                                            ("GATEWAY_WECHATPAY_NOTIFY_URL", deps.settings.wechatpay_notify_url))
                   if not value]
        if missing:
            raise ProviderRefused(f"WeChat Pay checkout is not configured: set {' and '.join(missing)}")
        if self.channel == "jsapi" and not checkout.payer_openid:
            raise InvalidInput("a jsapi checkout needs payer_openid (the payer's openid for this AppID)")
        if self.channel == "h5" and not checkout.client_ip:
            raise InvalidInput("an h5 checkout needs the payer's IP address")

    async def open(self, deps: ChannelDeps, order: PaymentOrder, checkout: Checkout) -> Opened:
        merchant = merchant_of(deps)
        answer = await call(deps, merchant, self.path, order_body(deps, merchant, order, checkout, self.channel))
        value = answer.get(self.answer_key)
        if not isinstance(value, str) or not value:
            raise ProviderUnavailable(f"wechatpay: the answer has no {self.answer_key}")
        if self.channel == "jsapi":
            return Opened(provider_order_id=value,
                          client={"jsapi": pay_sign(merchant, deps.settings.wechatpay_appid, value)})
        return Opened(provider_order_id=answer.get("prepay_id") or None, client={self.answer_key: value})

    async def close(self, deps: ChannelDeps, order: PaymentOrder) -> None:
        """Close-order, so the payer can no longer pay an expired order (an order already paid stays paid)."""
        merchant = merchant_of(deps)
        await call(deps, merchant, f"/v3/pay/transactions/out-trade-no/{order.id}/close", {"mchid": merchant.mchid})


for _channel, _key in (("jsapi", "prepay_id"), ("native", "code_url"), ("h5", "h5_url")):
    register(WechatpayChannel(_channel, _key))  # type: ignore[arg-type]
