"""Who is calling, and what their role allows in a community (from the membership projection)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import tokens
from gateway.crypto import matches_hash
from gateway.errors import InvalidCredentials, RoleRequired
from gateway.models import ApiKey, MemberRole
from gateway.state import GatewayState
from qunzhu_common.actor import ROLE_RANK, Actor, Authorizer, projection_lookup

API_KEY_PREFIX = "qz_"


@dataclass(frozen=True)
class Principal:
    subject: str  # a person id (telegram:123), apikey:<id> or platform-operator
    kind: Literal["member", "bot", "operator", "platform"]
    # API keys, and tokens from a code a community's connector delivered, act in this community only.
    community_id: str | None = None
    role: str | None = None

    def as_actor(self) -> Actor:
        """What the services are told about this caller (kind, community scope, an API key's role)."""
        return Actor(id=self.subject, kind=self.kind, scope=self.community_id, role=self.role)


# The rule every service applies to a caller (qunzhu_common.actor), over the gateway's own role projection.
_ROLES = Authorizer(projection_lookup(MemberRole))


async def authenticate(
    session: AsyncSession, *, state: GatewayState, authorization: str | None, api_key: str | None
) -> Principal | None:
    if api_key:
        return await _api_key(session, state=state, presented=api_key.strip())
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidCredentials("use `Authorization: Bearer <token>`")
        verified = tokens.verify(state.jwt_key, state.settings, token.strip())
        return Principal(subject=verified.subject, kind="member", community_id=verified.community_id)
    return None


def same_secret(secret: str, presented: str | None) -> bool:
    """`presented` is the configured `secret` (compared in constant time); never true for an unset secret."""
    return bool(secret) and presented is not None and hmac.compare_digest(presented.encode(), secret.encode())


async def _api_key(session: AsyncSession, *, state: GatewayState, presented: str) -> Principal:
    if same_secret(state.settings.admin_api_key.get_secret_value(), presented):
        return Principal(subject="platform-operator", kind="platform")
    key_id, _, secret = presented.removeprefix(API_KEY_PREFIX).partition("_")
    row = await session.get(ApiKey, key_id) if presented.startswith(API_KEY_PREFIX) and secret else None
    if row is None or row.revoked_at is not None or not matches_hash(secret, row.secret_hash):
        raise InvalidCredentials("unknown or revoked API key")
    return Principal(subject=f"apikey:{row.id}", kind=row.kind, community_id=row.community_id, role=row.role)  # type: ignore[arg-type]


async def role_in(session: AsyncSession, principal: Principal, community_id: str) -> str | None:
    return await _ROLES.role_in(session, principal.as_actor(), community_id)


async def require_role(session: AsyncSession, principal: Principal, community_id: str, minimum: str) -> str:
    role = await role_in(session, principal, community_id)
    if role is None or ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise RoleRequired(f"this needs the {minimum} role (or higher) in community {community_id}")
    return role
