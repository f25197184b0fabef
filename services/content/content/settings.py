"""Content's settings (env prefix CONTENT_). Numbers from the domain are defaults, never constants."""

from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from qunzhu_common.settings import ServiceSettings


class MessageLimit(BaseModel):
    """The longest text one bot message may carry on a platform, and how the platform counts it."""

    max: int = Field(gt=16)
    unit: Literal["chars", "bytes", "utf16"] = "chars"  # bytes: UTF-8; utf16: code units (Telegram)


class ContentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENT_", extra="ignore")

    service_name: str = "content"
    consume_batch_size: int = Field(
        default=500, ge=1,
        description="Records of a partition applied in one transaction: community.created writes a batch with "
                    "multi-row statements, so fewer, larger transactions save round trips.",
    )

    # -- scheduler ---------------------------------------------------------------------------------
    run_scheduler: bool = Field(default=True, description="Run the scheduler and the fan-out in this process.")
    scheduler_tick_s: float = Field(default=1.0, gt=0, description="Longest sleep between two scheduler passes.")
    scheduler_batch: int = Field(default=500, ge=1, description="Occurrences claimed per transaction.")
    misfire_grace_s: int = Field(default=300, ge=0, description="Fire if at most this late, else skip.")
    materialise_cap: int = Field(default=1000, ge=1, description="Occurrences materialised per schedule per pass.")

    # -- broadcast fan-out ---------------------------------------------------------------------------
    dispatch_batch: int = Field(default=500, ge=1)
    dispatch_poll_s: float = Field(default=0.2, gt=0)
    platform_rate_per_s: dict[str, float] = Field(
        default_factory=lambda: {"wechat": 5.0, "wecom": 10.0, "qq": 5.0, "telegram": 20.0, "discord": 5.0},
        description="Bot commands per second per platform (JSON); platforms not listed use the default.",
    )
    default_rate_per_s: float = Field(default=20.0, gt=0)
    rate_burst_s: float = Field(default=1.0, gt=0, description="Bucket size, in seconds' worth of commands.")
    delivery_gives_up_after_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Content sends each group's bot command once; the gateway's bot-action worker is the one place "
            "that retries. A delivery with no final answer from the gateway this long after it was sent is "
            "failed. The default covers the gateway's default budget: 5 attempts of at most 10 s each plus "
            "backoffs of 1+2+4+8 s (+25 % jitter), about 70 s, with room for its per-group rate limit."
        ),
    )
    message_limits: dict[str, MessageLimit] = Field(
        default_factory=lambda: {
            "telegram": MessageLimit(max=4096, unit="utf16"),
            "wecom": MessageLimit(max=2048, unit="bytes"),
            "discord": MessageLimit(max=2000, unit="chars"),
        },
        description="Longest bot message per platform (JSON); a longer text (a summary) is sent in numbered parts.",
    )
    default_message_limit: MessageLimit = Field(
        default_factory=lambda: MessageLimit(max=4000, unit="chars"), description="Other platforms (bridges)."
    )
    post_url_template: str = Field(
        default="",
        description="Public address of a post, e.g. https://example.org/c/{community_id}/posts/{post_id}; "
        "when set, a summary sent to the groups ends with its link.",
    )

    # -- sessions, rituals, digest, content mix --------------------------------------------------------
    session_preview_offsets_s: list[int] = Field(
        default_factory=lambda: [48 * 3600, 3600, 300], description="Previews before a session (T-48h, T-1h, T-5min)."
    )
    session_catch_up_preview: bool = Field(
        default=True,
        description="A session created after some of its preview times: send one catch-up preview at once.",
    )
    ritual_countdown_offsets_s: list[int] = Field(default_factory=lambda: [24 * 3600, 3600])
    digest_top_posts: int = Field(default=5, ge=1)
    content_mix_window_days: int = Field(default=28, ge=1)
    content_mix_threshold_pct: float = Field(default=10.0, ge=0)
