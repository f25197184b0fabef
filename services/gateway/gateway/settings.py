from pydantic import Field
from pydantic_settings import SettingsConfigDict
from qunzhu_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    membership_url: str = "http://127.0.0.1:8001"
    content_url: str = "http://127.0.0.1:8002"
    engagement_url: str = "http://127.0.0.1:8003"
    upstream_timeout_s: float = Field(default=10.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, description="Extra attempts for idempotent calls only.")
