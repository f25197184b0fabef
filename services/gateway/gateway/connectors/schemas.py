"""Connector API schemas. Secrets go in, never out: the public view names which ones are set."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ConnectorPlatform = Literal["generic", "telegram", "wecom"]
IdentityPlatform = Literal["telegram", "wecom", "wechat", "qq", "discord", "generic"]


class GenericSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signing_secrets: list[str] = Field(
        min_length=1, max_length=5, description="Standard Webhooks `whsec_…` secrets; several during a rotation."
    )
    outbound_url: str | None = Field(default=None, max_length=500, description="Your bot bridge (actions out).")
    outbound_secret: str | None = Field(default=None, description="`whsec_…` we sign outbound actions with.")


class TelegramSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(min_length=10, max_length=200)
    secret_token: str = Field(
        min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_-]+$",
        description="The secret_token given to setWebhook; stored hashed.",
    )


class WecomSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=100)
    encoding_aes_key: str = Field(min_length=43, max_length=43)
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
