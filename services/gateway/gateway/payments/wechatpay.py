"""WeChat Pay API v3 notifications: RSA-SHA256 (PKCS#1 v1.5) over `timestamp\\nnonce\\nbody\\n` with the
platform certificate named by Wechatpay-Serial, then AEAD_AES_256_GCM decryption of `resource` with the
APIv3 key. The order's `attach` (JSON) names {community_id, plan_id, payer_id, referrer_id?}."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import WebhookUnauthorized
from gateway.webhooks.commands import Unnormalisable
from qunzhu_common import jsonbody


def load_certificates(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []


def verify(
    headers: Mapping[str, str], body: bytes, certificates: Sequence[x509.Certificate], *, tolerance_s: int,
    now: float | None = None,
) -> None:
    stamp, nonce = headers.get("wechatpay-timestamp", ""), headers.get("wechatpay-nonce", "")
    signature, serial = headers.get("wechatpay-signature", ""), headers.get("wechatpay-serial", "")
    if not (stamp and nonce and signature and serial):
        raise WebhookUnauthorized("missing")
    try:
        serial_number = int(serial, 16)
        if abs((now if now is not None else time.time()) - int(stamp)) > tolerance_s:
            raise WebhookUnauthorized("timestamp")
    except ValueError:
        raise WebhookUnauthorized("missing") from None
    cert = next((c for c in certificates if c.serial_number == serial_number), None)
    if cert is None:
        raise WebhookUnauthorized("unknown_certificate")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookUnauthorized("unknown_certificate")
    message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise WebhookUnauthorized("signature") from None


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: str) -> dict[str, Any]:
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise Unnormalisable(f"unsupported algorithm {resource.get('algorithm')!r}")
    try:
        plain = AESGCM(apiv3_key.encode()).decrypt(
            str(resource["nonce"]).encode(), base64.b64decode(resource["ciphertext"]),
            str(resource.get("associated_data") or "").encode() or None,
        )
        return jsonbody.loads(plain)
    except (InvalidTag, KeyError, ValueError) as exc:
        raise Unnormalisable(f"cannot decrypt the resource: {type(exc).__name__}") from None


def _attach(transaction: Mapping[str, Any]) -> dict[str, Any]:
    try:
        attach = jsonbody.loads(transaction.get("attach") or "{}")
    except (ValueError, TypeError):
        raise Unnormalisable("attach is not JSON") from None
    missing = [k for k in ("community_id", "plan_id", "payer_id") if not attach.get(k)]
    if missing:
        raise Unnormalisable(f"attach lacks {', '.join(missing)}")
    return attach


def normalise(
    notification: Mapping[str, Any], resource: Mapping[str, Any], *, community_of: Mapping[str, str]
) -> list[tuple[str, str | None, dict]]:
    kind = notification.get("event_type", "")
    amount = resource.get("amount") or {}
    if kind.startswith("TRANSACTION."):
        attach = _attach(resource)
        common = dict(payment_id=resource.get("transaction_id") or resource.get("out_trade_no"),
                      provider="wechatpay", payer_id=attach["payer_id"], plan_id=attach["plan_id"])
        if resource.get("trade_state") == "SUCCESS":
            return [("payment.succeeded", attach["community_id"], dict(
                common, amount_fen=amount.get("total"), currency=amount.get("currency") or "CNY",
                referrer_id=attach.get("referrer_id") or None, paid_at=resource.get("success_time")))]
        if resource.get("trade_state") in ("PAYERROR", "CLOSED", "REVOKED"):
            return [("payment.failed", attach["community_id"], dict(
                common, reason=str(resource.get("trade_state_desc") or resource.get("trade_state"))[:500],
                failed_at=notification.get("create_time")))]
        return []
    if kind == "REFUND.SUCCESS":
        payment_id = resource.get("transaction_id")
        return [("payment.refunded", community_of.get(payment_id or ""), dict(
            payment_id=payment_id, refund_id=resource.get("refund_id"), provider="wechatpay",
            amount_fen=amount.get("refund"), currency=amount.get("currency") or "CNY",
            refunded_at=resource.get("success_time")))]
    return []
