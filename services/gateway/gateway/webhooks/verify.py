"""Verification of incoming chat webhooks. Each check raises WebhookUnauthorized(reason) or returns."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from gateway.crypto import matches_hash
from gateway.errors import WebhookUnauthorized


@functools.lru_cache(maxsize=4096)  # decoded once per secret, not once per delivery (#19)
def standard_webhooks_key(secret: str) -> bytes:
    """A Standard Webhooks secret is `whsec_` + base64 of the HMAC key."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of id.timestamp.body>` (used by our outbound webhooks and tests)."""
    mac = hmac.new(standard_webhooks_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_standard(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], *, tolerance_s: int, now: float | None = None
) -> str:
    """Check a Standard Webhooks delivery against every current secret; returns the delivery id."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookUnauthorized("missing")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookUnauthorized("timestamp") from None
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        raise WebhookUnauthorized("timestamp", "the timestamp is outside the tolerance")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = []
    for secret in secrets:
        try:
            key = standard_webhooks_key(secret)
        except ValueError:
            continue
        expected.append(base64.b64encode(hmac.digest(key, signed, "sha256")))  # OpenSSL's one-shot HMAC
    # Several signatures (space separated) during a key rotation; any valid one will do.
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version != "v1":
            continue
        if any(hmac.compare_digest(signature.encode(), e) for e in expected):
            return msg_id[:200]
    raise WebhookUnauthorized("signature")


def verify_telegram(headers: Mapping[str, str], secret_token_hash: str | None) -> None:
    presented = headers.get("x-telegram-bot-api-secret-token", "")
    if not presented or not secret_token_hash:
        raise WebhookUnauthorized("missing")
    if not matches_hash(presented, secret_token_hash):
        raise WebhookUnauthorized("secret")
