"""WeChat Pay API v3 refunds: POST /v3/refund/domestic/refunds, signed with the merchant's API private key.

Authorization: `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`,
the signature being RSA-SHA256 (PKCS#1 v1.5), base64, over `METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n` where
URL is the path and query. out_refund_no is our request id: WeChat Pay answers a repeated one with the
refund it already made.

An answer that moves money in our books (refund accepted, already refunded) is believed only once its
Wechatpay-Signature verifies against the platform certificates, as notifications are; an unverifiable answer
is retried (the same out_refund_no cannot refund twice) and finally fails with the reason.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.errors import WebhookUnauthorized
from gateway.models import RefundOrder
from gateway.payments.wechatpay import PlatformKeys, load_keys, verify
from gateway.refunds.result import Result
from gateway.settings import GatewaySettings

PATH = "/v3/refund/domestic/refunds"
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
# An INVALID_REQUEST with this message: the order was refunded in full before (by another out_refund_no).
FULLY_REFUNDED = ("已全额退款", "fully refunded")


@dataclass(frozen=True)
class Merchant:
    mchid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey
    api_base: str
    platform_certificates: PlatformKeys | tuple[x509.Certificate, ...]  # verify the answers (or public key)
    notify_url: str = ""  # where WeChat Pay reports the refund's outcome; empty: the merchant platform's setting
    tolerance_s: int = 300


NOT_CONFIGURED = ("WeChat Pay is not configured: set GATEWAY_WECHATPAY_MCHID, GATEWAY_WECHATPAY_MERCHANT_SERIAL_NO "
                  "and GATEWAY_WECHATPAY_MERCHANT_PRIVATE_KEY")


def merchant_from(settings: GatewaySettings) -> Merchant | str:
    """The merchant that signs API calls (refunds, orders), or why there is none (a sentence for ops)."""
    s = settings
    pem = s.wechatpay_merchant_private_key.get_secret_value()
    if not (s.wechatpay_mchid and s.wechatpay_merchant_serial_no and pem.strip()):
        return NOT_CONFIGURED
    try:
        key = load_private_key(pem)
        keys = load_keys(s.wechatpay_platform_certificates, s.wechatpay_public_key, s.wechatpay_public_key_id)
    except (ValueError, TypeError) as exc:
        return f"the WeChat Pay merchant key or platform certificates are unusable: {exc}"
    if not keys:
        return ("WeChat Pay needs GATEWAY_WECHATPAY_PLATFORM_CERTIFICATES or GATEWAY_WECHATPAY_PUBLIC_KEY to "
                "verify WeChat Pay's answers")
    return Merchant(s.wechatpay_mchid, s.wechatpay_merchant_serial_no, key, s.wechatpay_api_base,
                    platform_certificates=keys, notify_url=s.wechatpay_refund_notify_url,
                    tolerance_s=s.webhook_tolerance_s)


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The merchant's apiclient_key.pem; ValueError when it is not an RSA private key."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the WeChat Pay merchant key must be an RSA private key")
    return key


def signature_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(merchant: Merchant, method: str, url: str, body: bytes, *, timestamp: int | None = None,
                  nonce: str | None = None) -> str:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or secrets.token_hex(16).upper()
    signed = merchant.private_key.sign(signature_message(method, url, stamp, nonce, body), padding.PKCS1v15(),
                                       hashes.SHA256())
    return (f'{SCHEMA} mchid="{merchant.mchid}",nonce_str="{nonce}",timestamp="{stamp}",'
            f'serial_no="{merchant.serial_no}",signature="{base64.b64encode(signed).decode()}"')


def request_body(order: RefundOrder, total_fen: int, *, notify_url: str = "") -> bytes:
    body: dict = {"transaction_id": order.payment_id, "out_refund_no": order.request_id}
    if order.reason:
        body["reason"] = order.reason[:80]  # WeChat Pay shows it to the payer; 80 characters at most
    if notify_url:
        body["notify_url"] = notify_url
    body["amount"] = {"refund": order.amount_fen, "total": total_fen, "currency": order.currency}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def refund(client: httpx.AsyncClient, merchant: Merchant, order: RefundOrder, *, total_fen: int) -> Result:
    body = request_body(order, total_fen, notify_url=merchant.notify_url)
    headers = {
        "Authorization": authorization(merchant, "POST", PATH, body), "Content-Type": "application/json",
        "Accept": "application/json", "User-Agent": "qunzhu-gateway",
    }
    try:
        response = await client.post(merchant.api_base.rstrip("/") + PATH, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Result("retry", f"wechatpay: {type(exc).__name__}")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.is_success:
        status = answer.get("status")
        if status in ("CLOSED", "ABNORMAL"):  # the refund exists but will not reach the payer by itself
            return Result("failed", f"wechatpay: refund {answer.get('refund_id')} is {status}",
                          refund_id=answer.get("refund_id"))
        return _believed(response, merchant, Result("submitted", refund_id=answer.get("refund_id")))
    code, message = answer.get("code") or "", answer.get("message") or response.text[:500]
    error = f"wechatpay {response.status_code}: {code + ': ' if code else ''}{message}"
    if code == "INVALID_REQUEST" and any(m in message for m in FULLY_REFUNDED):
        return _believed(response, merchant, Result("already_refunded", error))
    if response.status_code >= 500 or response.status_code == 429:
        return Result("retry", error)
    return Result("failed", error)


def check_answer(response: httpx.Response, merchant: Merchant) -> None:
    """WebhookUnauthorized unless WeChat Pay signed this answer (platform certificate or public key)."""
    verify(response.headers, response.content, merchant.platform_certificates, tolerance_s=merchant.tolerance_s)


def _believed(response: httpx.Response, merchant: Merchant, result: Result) -> Result:
    """`result` if WeChat Pay signed this answer, else a retry saying why."""
    try:
        check_answer(response, merchant)
    except WebhookUnauthorized as exc:
        return Result("retry", f"wechatpay {response.status_code}: the answer's signature does not verify "
                               f"({exc.extra.get('reason')}); not believed")
    return result
