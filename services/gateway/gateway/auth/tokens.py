"""Member tokens: HS256 JWTs with the algorithm pinned and iss/aud/exp/sub required (RFC 8725)."""

from __future__ import annotations

import time
import uuid

import jwt

from gateway.errors import InvalidCredentials
from gateway.settings import GatewaySettings

ALGORITHM = "HS256"


def issue(key: bytes, settings: GatewaySettings, *, subject: str, method: str) -> tuple[str, int]:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": subject, "iat": now, "nbf": now,
        "exp": now + settings.jwt_ttl_s, "jti": str(uuid.uuid4()), "amr": [method],
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"}), settings.jwt_ttl_s


def verify(key: bytes, settings: GatewaySettings, token: str) -> str:
    """The subject of a valid token; InvalidCredentials otherwise (never says which check failed)."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=5,
        )
    except jwt.PyJWTError:
        raise InvalidCredentials("the token is invalid or expired") from None
    return str(claims["sub"])
