from pydantic import Field
from pydantic_settings import SettingsConfigDict

from qunzhu_common.settings import ServiceSettings


class MembershipSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEMBERSHIP_", extra="ignore")

    service_name: str = "membership"
    platform_fee_bps: int = Field(
        default=500, ge=0, le=10000, description="The platform's commission on each payment (5 % = 500 bps)."
    )
    run_scheduler: bool = Field(default=True, description="Run the expiry/reminder job in this process.")
    scheduler_interval_s: float = Field(default=30.0, gt=0, description="Seconds between scheduler passes.")
    scheduler_batch_size: int = Field(default=200, ge=1, description="Rows claimed per scheduler transaction.")
    unpaid_join_grace_s: int = Field(
        default=900, ge=0,
        description="Seconds a person may sit in a paid group before the unpaid-join policy applies "
        "(their payment may still be on its way).",
    )
    ritual_reminder_hours: list[int] = Field(
        default_factory=lambda: [24, 72], description="Ritual reminders, hours after joining."
    )
