"""WeChat Pay API v3 notifications: RSA-SHA256 (PKCS#1 v1.5) over `timestamp\\nnonce\\nbody\\n` with the
key named by Wechatpay-Serial, then AEAD_AES_256_GCM decryption of `resource` with the APIv3 key. The order's
`attach` (JSON) names {community_id, plan_id, payer_id, referrer_id?}.

The key is a platform certificate (serial = the certificate's hex serial number) or, for merchants on
"WeChat Pay public key" mode, the public key whose id (`PUB_KEY_ID_…`) is the serial. During a merchant's
migration WeChat Pay signs with either, so both are accepted at once; the same keys verify API answers."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import WebhookUnauthorized
from gateway.settings import GatewaySettings
from gateway.webhooks.commands import Unnormalisable
from qunzhu_common import jsonbody

PUBLIC_KEY_PREFIX = "PUB_KEY_ID_"


def load_certificates(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []


@dataclass(frozen=True)
class PlatformKeys:
    """What verifies WeChat Pay's signatures: platform certificates and/or the WeChat Pay public key."""

    certificates: tuple[x509.Certificate, ...] = ()
    public_keys: Mapping[str, rsa.RSAPublicKey] = field(default_factory=dict)  # PUB_KEY_ID_… → key

    def __bool__(self) -> bool:
        return bool(self.certificates or self.public_keys)

    def key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        """The key named by a Wechatpay-Serial header; None when unknown. ValueError: not a serial at all."""
        if serial.startswith(PUBLIC_KEY_PREFIX):
            return self.public_keys.get(serial)
        number = int(serial, 16)
        cert = next((c for c in self.certificates if c.serial_number == number), None)
        key = cert.public_key() if cert is not None else None
        return key if isinstance(key, rsa.RSAPublicKey) else None


def load_keys(certificates_pem: str, public_key_pem: str = "", public_key_id: str = "") -> PlatformKeys:
    """Platform keys from settings; ValueError when a PEM is unusable or the public key lacks its id."""
    public_keys: dict[str, rsa.RSAPublicKey] = {}
    if public_key_pem.strip():
        if not public_key_id.startswith(PUBLIC_KEY_PREFIX):
            raise ValueError(f"the WeChat Pay public key id must start with {PUBLIC_KEY_PREFIX}")
        key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the WeChat Pay public key must be an RSA public key")
        public_keys[public_key_id] = key
    return PlatformKeys(tuple(load_certificates(certificates_pem)), public_keys)


@lru_cache(maxsize=4)
def _keys(certificates: str, public_key: str, public_key_id: str) -> PlatformKeys:
    return load_keys(certificates, public_key, public_key_id)


def platform_keys(settings: GatewaySettings) -> PlatformKeys:
    """Platform certificates and/or the WeChat Pay public key, as configured (parsed once)."""
    return _keys(settings.wechatpay_platform_certificates, settings.wechatpay_public_key,
                 settings.wechatpay_public_key_id)


def as_keys(keys: PlatformKeys | Sequence[x509.Certificate]) -> PlatformKeys:
    return keys if isinstance(keys, PlatformKeys) else PlatformKeys(tuple(keys))


def verify(
    headers: Mapping[str, str], body: bytes, keys: PlatformKeys | Sequence[x509.Certificate], *,
    tolerance_s: int | None, now: float | None = None,
) -> None:
    """WebhookUnauthorized(reason) unless WeChat Pay signed `body` with these headers. `tolerance_s=None`
    skips the freshness window only: ops replaying a stored notification re-check its signature."""
    headers = {k.lower(): v for k, v in headers.items()}
    stamp, nonce = headers.get("wechatpay-timestamp", ""), headers.get("wechatpay-nonce", "")
    signature, serial = headers.get("wechatpay-signature", ""), headers.get("wechatpay-serial", "")
    if not (stamp and nonce and signature and serial):
        raise WebhookUnauthorized("missing")
    try:
        key = as_keys(keys).key_for(serial)
        if tolerance_s is not None and abs((now if now is not None else time.time()) - int(stamp)) > tolerance_s:
            raise WebhookUnauthorized("timestamp")
    except ValueError:
        raise WebhookUnauthorized("missing") from None
    if key is None:
        raise WebhookUnauthorized("unknown_certificate")
    message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise WebhookUnauthorized("signature") from None


class CannotDecrypt(Exception):
    """An authentic resource our APIv3 key does not open: our configuration, not the sender's fault."""


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: str) -> dict[str, Any]:
    """The resource's JSON. Unnormalisable when it is malformed for good (no ciphertext, another algorithm,
    not JSON inside); CannotDecrypt when the APIv3 key is missing or wrong (fixable: WeChat Pay should retry)."""
    if not isinstance(resource, Mapping):
        raise Unnormalisable("resource is not an object")
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise Unnormalisable(f"unsupported algorithm {resource.get('algorithm')!r}")
    try:
        nonce, ciphertext = str(resource["nonce"]).encode(), base64.b64decode(resource["ciphertext"])
        associated = str(resource.get("associated_data") or "").encode() or None
    except (KeyError, ValueError, TypeError) as exc:
        raise Unnormalisable(f"malformed resource: {type(exc).__name__}") from None
    try:
        aead = AESGCM(apiv3_key.encode())
    except ValueError:
        raise CannotDecrypt("GATEWAY_WECHATPAY_APIV3_KEY is not set or not 32 bytes") from None
    try:
        plain = aead.decrypt(nonce, ciphertext, associated)
    except InvalidTag:
        raise CannotDecrypt("the APIv3 key does not open this resource (wrong GATEWAY_WECHATPAY_APIV3_KEY?)") from None
    except ValueError as exc:  # an empty nonce
        raise Unnormalisable(f"malformed resource: {exc}") from None
    try:
        decrypted = jsonbody.loads(plain)
    except ValueError as exc:
        raise Unnormalisable(f"the decrypted resource is not JSON: {exc}") from None
    if not isinstance(decrypted, dict):
        raise Unnormalisable("the decrypted resource is not a JSON object")
    return decrypted


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
