"""Who is calling, and what their role allows in a community (from the membership projection)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import tokens
from gateway.crypto import matches_hash
from gateway.errors import InvalidCredentials, RoleRequired
from gateway.models import ApiKey, MemberRole
from gateway.state import GatewayState
from qunzhu_common.actor import ACTOR_ID_MAX, ROLE_RANK, Actor, Authorizer, projection_lookup
from qunzhu_common.errors import Forbidden, InvalidInput, Unauthorized
from qunzhu_common.events.contracts.identity import PERSON_ID_PATTERN

API_KEY_PREFIX = "qz_"
ON_BEHALF_OF_HEADER = "X-On-Behalf-Of"


@dataclass(frozen=True)
class Principal:
    subject: str  # a person id (telegram:123), apikey:<id> or platform-operator
    kind: Literal["member", "bot", "operator", "platform"]
    # API keys, and tokens from a code a community's connector delivered, act in this community only.
    community_id: str | None = None
    role: str | None = None
    # The operator credential (apikey:<id>, platform-operator) acting on behalf of the person `subject`.
    via: str | None = None

    def as_actor(self) -> Actor:
        """What the services are told about this caller (kind, community scope, an API key's role, and the
        operator credential acting on behalf of a person, which the assertion's HMAC covers too)."""
        return Actor(id=self.subject, kind=self.kind, scope=self.community_id, role=self.role, via=self.via)

    @property
    def recorded_as(self) -> str:
        """The caller as rows and events record it (`apikey:<id> for <person>` on behalf of a person)."""
        return self.as_actor().recorded_as


# The rule every service applies to a caller (qunzhu_common.actor), over the gateway's own role projection.
_ROLES = Authorizer(projection_lookup(MemberRole))


async def authenticate(
    session: AsyncSession, *, state: GatewayState, authorization: str | None, api_key: str | None,
    on_behalf_of: str | None = None,
) -> Principal | None:
    if on_behalf_of is not None:
        acting = on_behalf(await authenticate(session, state=state, authorization=authorization, api_key=api_key),
                           on_behalf_of)
        if acting.community_id is not None:  # an operator API key: its owner delegated it for the community's staff
            role = await role_in(session, acting, acting.community_id)
            if role is None or ROLE_RANK[role] < ROLE_RANK["admin"]:
                raise RoleRequired(f"{ON_BEHALF_OF_HEADER}: {acting.subject} is not staff (owner or admin) in "
                                   f"community {acting.community_id}, so this key may not act for them")
        return acting
    if api_key:
        return await _api_key(session, state=state, presented=api_key.strip())
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidCredentials("use `Authorization: Bearer <token>`")
        verified = tokens.verify(state.jwt_key, state.settings, token.strip())
        return Principal(subject=verified.subject, kind="member", community_id=verified.community_id)
    return None


def on_behalf(principal: Principal | None, person_id: str) -> Principal:
    """An operator credential acting as the person `X-On-Behalf-Of` names: from here on the caller is that
    person (every service applies that person's own rights, nothing more), recorded as `<key> for <person>`.

    Only the platform operator's key and operator API keys may do this; an operator API key keeps its
    community scope, so it acts for the person in its own community only, and only for its staff."""
    if principal is None:
        raise Unauthorized(f"{ON_BEHALF_OF_HEADER} needs an operator key (`X-API-Key`)")
    if principal.kind not in ("platform", "operator") or principal.via is not None:
        raise Forbidden(f"only operator API keys may send {ON_BEHALF_OF_HEADER}")
    person_id = person_id.strip()
    if (len(person_id) > 200 or not re.fullmatch(PERSON_ID_PATTERN, person_id)
            or person_id.startswith(("apikey:", "service:"))):
        raise InvalidInput(f"{ON_BEHALF_OF_HEADER} must name a person (<platform>:<user id>)")
    acting = Principal(subject=person_id, kind="member", community_id=principal.community_id, via=principal.subject)
    if len(acting.recorded_as) > ACTOR_ID_MAX:  # what rows and events record must fit their 200 characters
        raise InvalidInput(f"{ON_BEHALF_OF_HEADER} is too long")
    return acting


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
