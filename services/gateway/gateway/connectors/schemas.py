"""Connector API schemas. Secrets go in, never out: the public view names which ones are set."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

ConnectorPlatform = Literal["generic", "telegram", "wecom"]
IdentityPlatform = Literal["telegram", "wecom", "wechat", "qq", "discord", "generic"]


# Secrets are checked for the shape their platform gives them: a secret the connector cannot use (not
# base64, a key of the wrong length) would be stored, and every delivery after it refused as forged.
STANDARD_WEBHOOKS_KEY_BYTES = (24, 64)
_AES_KEY = re.compile(r"[A-Za-z0-9+/]{43}")


def _standard_webhooks_secret(value: str) -> str:
    """`whsec_` + standard base64 of a 24–64 byte HMAC key, as the Standard Webhooks spec issues them."""
    encoded = value.removeprefix("whsec_")
    if encoded == value:
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        key = None
    if key is None:
        raise ValueError("the part after whsec_ is not standard base64")
    low, high = STANDARD_WEBHOOKS_KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"the key decodes to {len(key)} bytes; it must be {low}–{high}")
    return value


def _encoding_aes_key(value: str) -> str:
    """WeCom's EncodingAESKey: 43 base64 characters, which with `=` appended decode to a 32-byte AES key."""
    if not _AES_KEY.fullmatch(value):
        raise ValueError("an EncodingAESKey is exactly 43 base64 characters (A–Z, a–z, 0–9, +, /)")
    try:
        key = base64.b64decode(value + "=", validate=True)
    except binascii.Error:
        raise ValueError("the EncodingAESKey is not valid base64") from None
    if len(key) != 32:  # pragma: no cover - 43 characters + "=" always decode to 32 bytes
        raise ValueError("the EncodingAESKey must decode to 32 bytes")
    return value


StandardWebhooksSecret = Annotated[str, Field(max_length=200), AfterValidator(_standard_webhooks_secret)]
EncodingAESKey = Annotated[str, AfterValidator(_encoding_aes_key)]


class GenericSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signing_secrets: list[StandardWebhooksSecret] = Field(
        min_length=1, max_length=5,
        description="Standard Webhooks secrets, `whsec_` + base64 of a 24–64 byte key; several during a rotation.",
    )
    outbound_url: str | None = Field(default=None, max_length=500, description="Your bot bridge (actions out).")
    outbound_secret: StandardWebhooksSecret | None = Field(
        default=None, description="`whsec_` + base64 of a 24–64 byte key, which we sign outbound actions with."
    )


class TelegramSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(min_length=10, max_length=200)
    secret_token: str = Field(
        min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_-]+$",
        description="The secret_token given to setWebhook (Telegram allows 1–256 of A–Z a–z 0–9 _ -; we ask "
        "for at least 16 so it cannot be guessed); stored hashed.",
    )


class WecomSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=100)
    encoding_aes_key: EncodingAESKey = Field(
        description="The EncodingAESKey from the WeCom console: 43 base64 characters (a 32-byte AES key)."
    )
    corp_id: str = Field(default="", max_length=100, description="Checked against the decrypted receive id.")
    robot_keys: dict[str, str] = Field(
        default_factory=dict, description="Group robot webhook key per chat id (actions out)."
    )


SECRET_MODELS: dict[str, type[BaseModel]] = {
    "generic": GenericSecrets, "telegram": TelegramSecrets, "wecom": WecomSecrets,
}


class ConnectorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community_id: str | None = Field(default=None, max_length=100, description="Taken from the path.")
    platform: ConnectorPlatform
    identity_platform: IdentityPlatform | None = Field(
        default=None, description="Prefix of person/group ids; defaults to the platform (generic bridges: qq…)."
    )
    name: str = Field(default="", max_length=100)
    groups: list[str] = Field(default_factory=list, max_length=1000, description="Platform chat ids.")
    secrets: dict[str, Any]

    @model_validator(mode="after")
    def _secrets_fit_platform(self) -> ConnectorCreate:
        SECRET_MODELS[self.platform].model_validate(self.secrets)
        if self.identity_platform is None:
            self.identity_platform = self.platform
        return self


class ConnectorUpdate(BaseModel):
    """Replace the groups and/or the secrets (rotation); what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    groups: list[str] | None = Field(default=None, max_length=1000)
    secrets: dict[str, Any] | None = None


class ConnectorPublic(BaseModel):
    id: str
    community_id: str
    platform: ConnectorPlatform
    identity_platform: IdentityPlatform
    name: str
    groups: list[str]
    secrets_set: list[str] = Field(description="Names of the secrets stored (values are never returned).")
    webhook_path: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class ConnectorsPublic(BaseModel):
    data: list[ConnectorPublic]
    count: int
