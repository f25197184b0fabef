"""The acting caller as the gateway vouches for it, and the authorizer every service uses.

The gateway authenticates (member tokens, API keys) and forwards the caller in `X-Actor-Id` with an
`X-Actor-Assertion`: an HMAC, keyed by the platform's internal key, over the actor's claims, the method,
the path and the query it forwards, and a timestamp. A service trusts an actor only with a valid
assertion for the request it received, so a caller that reaches a service port directly — or a gateway
bug that forwards a different path than it checked — cannot claim to be anyone.

Each service then decides for itself, from the actor and its own copy of community roles
(`Authorizer.require("admin")`), with the community taken from the path the service itself received.
A community-scoped actor (an API key, or a login whose proof came through one community's connector)
acts in that community only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from qunzhu_common.errors import Forbidden, Unauthorized
from qunzhu_common.events.contracts.identity import PERSON_ID_PATTERN

ACTOR_HEADER = "X-Actor-Id"
ASSERTION_HEADER = "X-Actor-Assertion"
ASSERTION_VERSION = "v1"
ASSERTION_TOLERANCE_S = 120  # gateway → service is one hop; retries reuse the assertion within seconds
INTERNAL_KEY_ENV = "QUNZHU_INTERNAL_KEY"
INTERNAL_KEY_FILE = "internal.key"

ActorKind = Literal["member", "bot", "operator", "platform", "service"]
ACTOR_KINDS: frozenset[str] = frozenset({"member", "bot", "operator", "platform", "service"})
ROLE_RANK = {"member": 1, "guest": 2, "admin": 3, "owner": 4}
# Statuses in which a member's role grants anything; a removed or expired member's role is void.
ACTIVE_STATUSES = frozenset({"active", "pending_ritual"})
PLATFORM_OPERATOR = "platform-operator"
# A person id as every event names one (contracts.identity), an API key (`apikey:<id>`), a service
# (`service:<name>`) or the platform operator.
_ACTOR_ID = re.compile(f"(?:{PERSON_ID_PATTERN.strip('^$')}|{PLATFORM_OPERATOR})")
ACTOR_ID_MAX = 200
# Who may act on behalf of a person: an operator API key or the platform operator.
_VIA = re.compile(rf"apikey:[A-Za-z0-9_-]{{1,64}}|{PLATFORM_OPERATOR}")


@dataclass(frozen=True)
class Actor:
    """Who acts. `scope` is the one community a scoped actor may act in (API keys, community logins)."""

    id: str
    kind: ActorKind = "member"
    scope: str | None = None
    role: str | None = None  # an API key's role in its community
    # The operator credential acting on behalf of the person `id` (`X-On-Behalf-Of`): `apikey:<id>` or
    # `platform-operator`. The person's own rights apply; what is recorded names both (`recorded_as`).
    via: str | None = None

    @property
    def is_person(self) -> bool:
        return self.kind == "member"

    @property
    def recorded_as(self) -> str:
        """How this actor is written into events and audit rows: `apikey:<id> for <person>` when on behalf."""
        return self.id if self.via is None else f"{self.via} for {self.id}"

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {"id": self.id, "kind": self.kind, "scope": self.scope, "role": self.role}
        if self.via is not None:  # absent otherwise: assertions without it read exactly as before
            claims["via"] = self.via
        return claims


# -- the internal key ----------------------------------------------------------------------------


def internal_key(configured: str, data_dir: Path) -> bytes:
    """The key signing actor assertions: configured, else $QUNZHU_INTERNAL_KEY, else `<data_dir>/internal.key`.

    The key file is created once (0600) and shared by every service that uses the same data directory
    (embedded mode, `make up`); separate hosts set the same key in their environment.
    """
    value = configured or os.environ.get(INTERNAL_KEY_ENV, "")
    if value:
        return value.encode()
    path = data_dir / INTERNAL_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = data_dir / f".{INTERNAL_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(temporary, path)  # atomic: the first process to start wins, the others read its key
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text().strip().encode()


# -- assertions ----------------------------------------------------------------------------------


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    return urlencode(sorted(pairs))


def _mac(key: bytes, *, payload: str, issued_at: int, method: str, path: str, query: str) -> str:
    message = "\n".join((ASSERTION_VERSION, str(issued_at), payload, method.upper(), path, query))
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def sign(key: bytes, actor: Actor, *, method: str, path: str, query: list[tuple[str, str]],
         now: float | None = None) -> dict[str, str]:
    """The headers vouching for `actor` on exactly this request (`path` percent-decoded, as routed)."""
    issued_at = int(time.time() if now is None else now)
    payload = base64.urlsafe_b64encode(json.dumps(actor.claims(), separators=(",", ":")).encode()).decode()
    mac = _mac(key, payload=payload, issued_at=issued_at, method=method, path=path, query=canonical_query(query))
    return {ACTOR_HEADER: actor.id, ASSERTION_HEADER: f"{ASSERTION_VERSION}.{issued_at}.{payload}.{mac}"}


def verify(key: bytes, *, actor_id: str | None, assertion: str | None, method: str, path: str,
           query: list[tuple[str, str]], now: float | None = None,
           tolerance_s: int = ASSERTION_TOLERANCE_S) -> Actor | None:
    """The actor a valid assertion vouches for; None for an anonymous request; Unauthorized otherwise."""
    if not actor_id and not assertion:
        return None
    if not actor_id or not assertion:
        raise Unauthorized(f"{ACTOR_HEADER} is accepted only with the gateway's {ASSERTION_HEADER}")
    try:
        version, issued, payload, mac = assertion.split(".")
        issued_at = int(issued)
    except ValueError:
        raise Unauthorized(f"{ASSERTION_HEADER} is malformed") from None
    expected = _mac(key, payload=payload, issued_at=issued_at, method=method, path=path,
                    query=canonical_query(query))
    if version != ASSERTION_VERSION or not hmac.compare_digest(expected, mac):
        raise Unauthorized(f"{ASSERTION_HEADER} does not vouch for this request")
    if abs((time.time() if now is None else now) - issued_at) > tolerance_s:
        raise Unauthorized(f"{ASSERTION_HEADER} has expired")
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
        via = claims.get("via")
        actor = Actor(id=str(claims["id"]), kind=claims["kind"], scope=claims.get("scope"), role=claims.get("role"),
                      via=None if via is None else str(via))
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise Unauthorized(f"{ASSERTION_HEADER} is malformed") from None
    if (actor.id != actor_id or actor.kind not in ACTOR_KINDS or len(actor.id) > ACTOR_ID_MAX
            or not _ACTOR_ID.fullmatch(actor.id)):
        raise Unauthorized(f"{ASSERTION_HEADER} does not vouch for {ACTOR_HEADER}")
    if actor.via is not None and (actor.kind != "member" or not _VIA.fullmatch(actor.via)
                                  or len(actor.recorded_as) > ACTOR_ID_MAX):
        raise Unauthorized(f"{ASSERTION_HEADER} names an acting credential that cannot act on behalf of a person")
    return actor


# -- request dependencies --------------------------------------------------------------------------


def _key_of(request: Request) -> bytes:
    runtime = request.app.state.runtime
    key = getattr(runtime, "internal_key", None)
    if key is None:
        settings = runtime.settings
        key = internal_key(settings.internal_key.get_secret_value(), settings.data_dir)
        runtime.internal_key = key
    return key  # type: ignore[no-any-return]


def actor_of(request: Request) -> Actor | None:
    """The verified actor of this request (None when anonymous), checked once and kept on the request."""
    if "qunzhu_actor" in request.scope:
        return request.scope["qunzhu_actor"]  # type: ignore[no-any-return]
    actor = verify(
        _key_of(request), actor_id=request.headers.get(ACTOR_HEADER), assertion=request.headers.get(ASSERTION_HEADER),
        method=request.method, path=request.scope["path"], query=list(request.query_params.multi_items()),
    )
    request.scope["qunzhu_actor"] = actor
    return actor


async def enforce_scope(request: Request) -> None:
    """App-wide: a scoped actor acts only inside its community — on paths of that community, and never
    writes outside one (creating a community, say)."""
    actor = actor_of(request)
    if actor is None or actor.scope is None:
        return
    community_id = request.path_params.get("community_id")
    if community_id is None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            raise Forbidden(f"this credential acts only inside community {actor.scope}")
    elif community_id != actor.scope:
        raise Forbidden(f"this credential acts only inside community {actor.scope}, not {community_id}")


def require_actor(actor: Annotated[Actor | None, Depends(actor_of)]) -> Actor:
    if actor is None:
        error = Unauthorized(f"this route needs a caller ({ACTOR_HEADER}, set by the gateway after authentication)")
        error.headers["WWW-Authenticate"] = 'Bearer realm="qunzhu"'
        raise error
    return actor


OptionalActor = Annotated[Actor | None, Depends(actor_of)]
RequiredActor = Annotated[Actor, Depends(require_actor)]

# (session, community id, person id) → (role, status) from the service's own projection, None if unknown.
RoleLookup = Callable[[AsyncSession, str, str], Awaitable[tuple[str, str] | None]]


@dataclass(frozen=True)
class Authorized:
    """An actor allowed in a community, with the role that allowed it."""

    actor: Actor
    community_id: str
    role: str

    @property
    def is_staff(self) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK["admin"]


def projection_lookup(model: Any) -> RoleLookup:
    """The lookup over a service's projection table keyed (community_id, member_id) with role and status."""

    async def lookup(session: AsyncSession, community_id: str, person_id: str) -> tuple[str, str] | None:
        row = await session.get(model, (community_id, person_id))
        return None if row is None else (row.role, row.status)

    return lookup


class Authorizer:
    """Role checks against one service's projection of membership's roles.

    `require("admin")` is a dependency for routes whose path has `{community_id}`:
    `OwnerOrAdmin = Annotated[Authorized, Depends(authorizer.require("admin"))]`. The check reads in the
    route's own transaction (the request's session dependency unless another is given).
    """

    def __init__(self, lookup: RoleLookup, session_dependency: Callable[..., Any] | None = None) -> None:
        if session_dependency is None:
            from qunzhu_common.deps import get_session  # not at import time: deps → service → actor

            session_dependency = get_session
        self._lookup = lookup
        self._session = session_dependency

    async def role_in(self, session: AsyncSession, actor: Actor, community_id: str) -> str | None:
        if actor.kind == "platform":
            return "owner"
        if actor.scope is not None and actor.scope != community_id:
            return None
        if actor.kind in ("bot", "operator"):
            return actor.role if actor.role in ROLE_RANK else None
        if actor.kind != "member":
            return None
        found = await self._lookup(session, community_id, actor.id)
        if found is None:
            return None
        role, status = found
        if status not in ACTIVE_STATUSES and not (role == "owner" and status != "dissolved"):
            return None  # an owner's role lasts until dissolution
        return role if role in ROLE_RANK else None

    def require(self, minimum: str) -> Callable[..., Awaitable[Authorized]]:
        if minimum not in ROLE_RANK:
            raise ValueError(f"unknown role {minimum!r}")
        session_dependency = self._session

        # scope="function" as in qunzhu_common.deps.SessionDep: the same cache key, so the route's own session
        # is reused instead of opening a second one (one pooled SQLite connection would wait for itself).
        session_param = Annotated[AsyncSession, Depends(session_dependency, scope="function")]

        async def dependency(request: Request, actor: RequiredActor, session: session_param) -> Authorized:
            community_id = request.path_params["community_id"]
            role = await self.role_in(session, actor, community_id)
            if role is None or ROLE_RANK[role] < ROLE_RANK[minimum]:
                raise Forbidden(f"this needs the {minimum} role (or higher) in community {community_id}")
            return Authorized(actor=actor, community_id=community_id, role=role)

        dependency.__name__ = f"require_{minimum}"
        # This module's annotations are strings, which FastAPI evaluates in the module's globals, where the
        # closure's `session_dependency` is unknown (the parameter would become a query field `session`).
        dependency.__annotations__["session"] = session_param
        return dependency

    async def check(self, session: AsyncSession, actor: Actor | None, community_id: str, minimum: str) -> str:
        """The same check inside a route (when the least role depends on the body or the resource)."""
        if actor is None:
            raise Unauthorized(f"this needs a caller ({ACTOR_HEADER}, set by the gateway after authentication)")
        role = await self.role_in(session, actor, community_id)
        if role is None or ROLE_RANK[role] < ROLE_RANK[minimum]:
            raise Forbidden(f"this needs the {minimum} role (or higher) in community {community_id}")
        return role


def require_self_unless_staff(granted: Authorized, named: str | None, field: str) -> None:
    """A person below admin may only name themself in `field` (person_id, graded_by, …)."""
    if named is None or granted.is_staff or granted.actor.kind != "member":
        return
    if named != granted.actor.id:
        raise Forbidden(f"`{field}` must be you ({granted.actor.id}) unless you are staff")
