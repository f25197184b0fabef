"""Connector API schemas. Secrets go in, never out: the public view names which ones are set."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

ConnectorPlatform = Literal["generic", "telegram", "wecom", "onebot", "qq"]
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
    """A generic bridge's secrets: the Standard Webhooks keys its deliveries are signed with, and where and
    how to send it actions."""

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
    """A Telegram bot's secrets: its token and the webhook's secret_token."""

    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(min_length=10, max_length=200, description="The bot's token from @BotFather (actions out).")
    secret_token: str = Field(
        min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_-]+$",
        description="The secret_token given to setWebhook (Telegram allows 1–256 of A–Z a–z 0–9 _ -; we ask "
        "for at least 16 so it cannot be guessed); stored hashed.",
    )


class WecomSecrets(BaseModel):
    """A WeCom app callback's secrets: Token and EncodingAESKey from the console, group robot keys."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=100, description="The callback Token from the WeCom console.")
    encoding_aes_key: EncodingAESKey = Field(
        description="The EncodingAESKey from the WeCom console: 43 base64 characters (a 32-byte AES key)."
    )
    corp_id: str = Field(default="", max_length=100, description="Checked against the decrypted receive id.")
    robot_keys: dict[str, str] = Field(
        default_factory=dict, description="Group robot webhook key per chat id (actions out)."
    )
    register_external_chats: bool = Field(default=False, description=(
        "Register each customer group (客户群) created in the app's visible range as one of this connector's "
        "groups, from its change_external_chat create callback."))
    corp_secret: str = Field(default="", max_length=200, description=(
        "The self-built app's Secret: with corp_id and agent_id, login codes go to a person through the app."))
    agent_id: int | None = Field(default=None, ge=0, description="The self-built app's AgentId (message/send).")


class OnebotSecrets(BaseModel):
    """A OneBot 11 implementation's secrets (NapCat, Lagrange.OneBot, LLOneBot): the HTTP POST `secret` its
    events are signed with, the bot's QQ number, and its HTTP API for actions."""

    model_config = ConfigDict(extra="forbid")

    secret: str = Field(min_length=16, max_length=200, description=(
        "The HTTP POST secret (`X-Signature: sha1=<HMAC-SHA1(secret, body)>`); at least 16 characters."))
    self_id: str = Field(pattern=r"^[0-9]{5,12}$", description="The bot's QQ number (checked against X-Self-ID).")
    api_base: str | None = Field(default=None, max_length=500, pattern=r"^https?://", description=(
        "The implementation's HTTP API, e.g. http://127.0.0.1:3000 (actions out: POST {api_base}/{action})."))
    access_token: str | None = Field(default=None, max_length=200, description=(
        "The HTTP API's access_token, sent as `Authorization: Bearer …`."))


class QqBotSecrets(BaseModel):
    """A QQ official bot's (q.qq.com) AppID and AppSecret: the secret derives the Ed25519 key callbacks are
    signed with and, with the AppID, gets the app access token for replies."""

    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(pattern=r"^[0-9]{4,20}$", description="The bot's AppID.")
    app_secret: str = Field(min_length=8, max_length=200, description="The bot's AppSecret (ClientSecret).")


SECRET_MODELS: dict[str, type[BaseModel]] = {
    "generic": GenericSecrets, "telegram": TelegramSecrets, "wecom": WecomSecrets, "onebot": OnebotSecrets,
    "qq": QqBotSecrets,
}


class _ConnectorCreateBase(BaseModel):
    """What every platform's registration shares; each subclass adds its `platform` tag and `secrets`."""

    model_config = ConfigDict(extra="forbid")

    community_id: str | None = Field(default=None, max_length=100, description="Taken from the path.")
    identity_platform: IdentityPlatform | None = Field(
        default=None, description="Prefix of person/group ids; defaults to the platform (generic bridges: qq…)."
    )
    name: str = Field(default="", max_length=100)
    groups: list[str] = Field(default_factory=list, max_length=1000, description="Platform chat ids.")

    @model_validator(mode="after")
    def _identity_defaults_to_platform(self) -> _ConnectorCreateBase:
        if self.identity_platform is None:
            self.identity_platform = self.platform  # type: ignore[attr-defined]  # every subclass has it
        return self


class GenericConnectorCreate(_ConnectorCreateBase):
    """A generic bridge (QQ, Discord, WeChat bots…): Standard Webhooks signatures both ways."""

    platform: Literal["generic"]
    secrets: GenericSecrets


class TelegramConnectorCreate(_ConnectorCreateBase):
    """A Telegram bot: its token (actions out) and the secret_token given to setWebhook (deliveries in)."""

    platform: Literal["telegram"]
    secrets: TelegramSecrets


class WecomConnectorCreate(_ConnectorCreateBase):
    """A WeCom (企业微信) app callback: Token and EncodingAESKey, group robot keys for actions out."""

    platform: Literal["wecom"]
    secrets: WecomSecrets


class OnebotConnectorCreate(_ConnectorCreateBase):
    """QQ groups through a OneBot 11 implementation (HTTP POST events in, HTTP API actions out); people and
    groups are `qq:<QQ number>` / `qq:<group number>`."""

    platform: Literal["onebot"]
    identity_platform: IdentityPlatform | None = Field(default="qq", description="Prefix of person/group ids: qq.")
    secrets: OnebotSecrets


class QqBotConnectorCreate(_ConnectorCreateBase):
    """A QQ official bot (q.qq.com webhook, Ed25519-signed); groups are group_openids, people member_openids."""

    platform: Literal["qq"]
    secrets: QqBotSecrets


# One per SECRET_MODELS platform (a test holds them in step).
ConnectorRegistration = (GenericConnectorCreate | TelegramConnectorCreate | WecomConnectorCreate
                         | OnebotConnectorCreate | QqBotConnectorCreate)
ConnectorCreateAny = Annotated[ConnectorRegistration, Field(discriminator="platform")]


class ConnectorCreate(RootModel[ConnectorCreateAny]):
    """A connector registration, one shape per `platform` (the discriminator): `secrets` is that platform's
    secrets object, so its required fields are in the schema rather than learned from a 422."""

    root: ConnectorCreateAny

    @model_validator(mode="wrap")
    @classmethod
    def _errors_point_into_the_body(cls, data: Any, handler: ModelWrapValidatorHandler[ConnectorCreate]) -> Any:
        """Drop the union's tag from error locations: `["secrets", "bot_token"]` is a path in the JSON sent
        (as a rotation's errors are), `["telegram", "secrets", "bot_token"]` is not."""
        try:
            return handler(data)
        except ValidationError as exc:
            tag = data.get("platform") if isinstance(data, dict) else None
            errors: list[InitErrorDetails] = []
            for error in exc.errors():
                loc = error["loc"][1:] if tag is not None and error["loc"][:1] == (tag,) else error["loc"]
                detail = InitErrorDetails(type=error["type"], loc=loc, input=error["input"])
                if "ctx" in error:
                    detail["ctx"] = error["ctx"]
                errors.append(detail)
            try:
                moved = ValidationError.from_exception_data(exc.title, errors)
            except (KeyError, TypeError, ValueError):  # an error type that cannot be rebuilt: keep the original
                raise exc from None
            raise moved from None


class ConnectorUpdate(BaseModel):
    """Replace the groups and/or the secrets (rotation); what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    groups: list[str] | None = Field(default=None, max_length=1000)
    secrets: dict[str, Any] | None = Field(default=None, description=(
        "New secrets, whole (a rotation replaces them all): the object the connector's platform takes at "
        "registration, checked against the stored platform — GenericSecrets for generic, TelegramSecrets for "
        "telegram, WecomSecrets for wecom, OnebotSecrets for onebot, QqBotSecrets for qq."
    ))


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
