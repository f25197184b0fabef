"""Member tokens: HS256 JWTs with the algorithm pinned and iss/aud/exp/sub required (RFC 8725)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from gateway.errors import InvalidCredentials
from gateway.settings import GatewaySettings

ALGORITHM = "HS256"


SCOPE_CLAIM = "qz_community"  # present: the token acts in that community only


@dataclass(frozen=True)
class TokenSubject:
    subject: str
    community_id: str | None  # None: a person-wide token (a platform-verified login)


def issue(key: bytes, settings: GatewaySettings, *, subject: str, method: str,
          community_id: str | None = None) -> tuple[str, int]:
    """A member token; `community_id` scopes it to the community whose connector delivered the proof."""
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": subject, "iat": now, "nbf": now,
        "exp": now + settings.jwt_ttl_s, "jti": str(uuid.uuid4()), "amr": [method],
    }
    if community_id is not None:
        claims[SCOPE_CLAIM] = community_id
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"}), settings.jwt_ttl_s


def verify(key: bytes, settings: GatewaySettings, token: str) -> TokenSubject:
    """The subject (and scope) of a valid token; InvalidCredentials otherwise (never says which check failed)."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=5,
        )
    except jwt.PyJWTError:
        raise InvalidCredentials("the token is invalid or expired") from None
    scope = claims.get(SCOPE_CLAIM)
    if scope is not None and not isinstance(scope, str):
        raise InvalidCredentials("the token is invalid or expired")
    return TokenSubject(subject=str(claims["sub"]), community_id=scope)
