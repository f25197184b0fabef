"""WeCom (企业微信) callback crypto: msg_signature (SHA-1 over sorted token/timestamp/nonce/data) and
AES-256-CBC with the EncodingAESKey, PKCS#7 padded to 32 bytes, plaintext = 16 random bytes +
4-byte big-endian length + message + receive id (the corp id)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class WecomCryptoError(ValueError):
    pass


def signature(token: str, timestamp: str, nonce: str, data: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, data])).encode()).hexdigest()


def check_signature(token: str, timestamp: str, nonce: str, data: str, msg_signature: str) -> bool:
    return hmac.compare_digest(signature(token, timestamp, nonce, data), msg_signature.lower())


def _key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise WecomCryptoError("EncodingAESKey must decode to 32 bytes")
    return key


def decrypt(encoding_aes_key: str, encrypted: str) -> tuple[bytes, str]:
    """Return (message, receive id)."""
    key = _key(encoding_aes_key)
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except ValueError as exc:
        raise WecomCryptoError("not base64") from exc
    if not raw or len(raw) % 16:
        raise WecomCryptoError("bad ciphertext length")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise WecomCryptoError("bad padding")
    plain = padded[:-pad]
    if len(plain) < 20:
        raise WecomCryptoError("too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise WecomCryptoError("bad length")
    return plain[20:20 + length], plain[20 + length:].decode()


def encrypt(encoding_aes_key: str, message: bytes, receive_id: str) -> str:
    """The platform's side (tests, the benchmark): what WeCom sends us."""
    key = _key(encoding_aes_key)
    plain = os.urandom(16) + struct.pack(">I", len(message)) + message + receive_id.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
