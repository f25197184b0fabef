"""Connector secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation; hashes for the rest.

Secrets the gateway must use again (HMAC keys, AES keys, bot tokens) are encrypted; secrets it only
has to recognise (Telegram's secret token, API keys, login codes) are stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from gateway.settings import GatewaySettings
from qunzhu_common.db.files import private_dir


def sha256_hex(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


def matches_hash(candidate: str, stored_hex: str) -> bool:
    """Constant-time comparison of a presented secret against its stored hash."""
    return hmac.compare_digest(sha256_hex(candidate), stored_hex)


class SecretBox:
    """Encrypts with the first key, decrypts with any (rotation: prepend the new key, re-encrypt later)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def seal(self, secrets: dict[str, object]) -> str:
        return self._fernet.encrypt(json.dumps(secrets, ensure_ascii=False).encode()).decode()

    def open(self, token: str) -> dict[str, object]:
        return json.loads(self._fernet.decrypt(token.encode()))


def load_keys(settings: GatewaySettings) -> list[bytes]:
    """Keys from settings, else the data directory's key file (created once, readable by us only)."""
    configured = settings.secret_key.get_secret_value().strip()
    if configured:
        return [k.strip().encode() for k in configured.split(",") if k.strip()]
    path = Path(settings.data_dir) / "gateway.key"
    if not path.exists():
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    return [path.read_bytes().strip()]


def jwt_key(settings: GatewaySettings, keys: list[bytes]) -> bytes:
    configured = settings.jwt_secret.get_secret_value()
    if configured:
        return configured.encode()
    # A separate key derived from the secret key, so a token key never decrypts secrets.
    return hmac.new(keys[0], b"qunzhu-gateway-jwt", hashlib.sha256).digest()
