"""Ids on hot paths: strings as `str(uuid.uuid4())` and `str(uuid.uuid5(...))` give them, without the UUID
objects in between (#19: on the chat webhook, three of them per request and event cost ≈ 4 % of the
gateway's CPU). Anything that needs a `uuid.UUID` parses these strings as usual."""

from __future__ import annotations

import hashlib
import uuid
from random import getrandbits

_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (4 << 76) | (0x8000 << 48)  # version 4, the RFC 4122 variant


def uuid4_str() -> str:
    """A random (version 4) UUID in its canonical text form — for request and correlation ids, which need
    to be unique, not unguessable (the caller may choose its own): `random`, not a system call per id."""
    h = f"{getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid5_str(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))`: the name-based (SHA-1) UUID of `name` in `namespace`."""
    raw = bytearray(hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
