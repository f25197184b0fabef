"""`qunzhu token`: a member token minted from embedded mode's local key file, for development.

It is the token the gateway's own login routes issue (same key, issuer, audience and lifetime), so a
developer can act as a community's owner without a chat connector to deliver a one-time code. Where the
gateway's keys come from the environment (GATEWAY_SECRET_KEY / GATEWAY_JWT_SECRET: production) it refuses:
there, logins go through the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from qunzhu_common.events.contracts.identity import PersonId

KEY_FILE = "gateway.key"


class TokenRefused(Exception):
    """Why no token was minted (shown to the user as is)."""


@dataclass(frozen=True)
class DevToken:
    token: str
    subject: str
    community_id: str | None
    expires_in: int


def mint(*, person: str, data_dir: str | Path = "data", community_id: str | None = None) -> DevToken:
    """A member token for `person` (person-wide, or scoped to `community_id`) signed with the local key file."""
    from gateway.auth.tokens import issue
    from gateway.crypto import jwt_key
    from gateway.settings import GatewaySettings

    try:
        TypeAdapter(PersonId).validate_python(person)
    except ValidationError:
        raise TokenRefused(f"--person must be <platform>:<user id>, e.g. telegram:42 (got {person!r})") from None
    if community_id is not None and not community_id.strip():
        raise TokenRefused("--community must not be empty")
    settings = GatewaySettings(data_dir=Path(data_dir))
    configured = [name for name, value in (("GATEWAY_SECRET_KEY", settings.secret_key),
                                           ("GATEWAY_JWT_SECRET", settings.jwt_secret))
                  if value.get_secret_value().strip()]
    if configured:
        raise TokenRefused(
            f"{' and '.join(configured)} set: the gateway's keys come from the environment (production), so "
            "no token is minted locally; log in through the gateway (POST /api/v1/auth/codes, /api/v1/auth/token "
            "or /api/v1/auth/telegram)."
        )
    key_file = settings.data_dir / KEY_FILE
    if not key_file.is_file():
        raise TokenRefused(
            f"no key file {key_file} yet: run `make run` (or `python -m qunzhu run --data-dir {data_dir}`) once, "
            "so the gateway creates it, then ask again."
        )
    key = key_file.read_bytes().strip()
    if not key:
        raise TokenRefused(f"the key file {key_file} is empty")
    token, ttl = issue(jwt_key(settings, [key]), settings, subject=person, method="local",
                       community_id=community_id)
    return DevToken(token=token, subject=person, community_id=community_id, expires_in=ttl)
