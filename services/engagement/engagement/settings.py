from pydantic import Field
from pydantic_settings import SettingsConfigDict

from qunzhu_common.settings import ServiceSettings


class EngagementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENGAGEMENT_", extra="ignore")

    service_name: str = "engagement"
    jobs_interval_s: float = Field(
        default=3600, ge=0,
        description="Lurkers, elimination, key people and group health run this often (0: only on request).",
    )
    activities_interval_s: float = Field(
        default=60, ge=0,
        description="Due polls close, meetup reminders and anniversaries are checked this often (0: never).",
    )
    consume_batch_size: int = Field(
        default=500, ge=1,
        description="Chat events scored together in one transaction (one read of caps and cooldowns per batch).",
    )
