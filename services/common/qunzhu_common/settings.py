"""Settings base: every service reads its own environment prefix (MEMBERSHIP_, CONTENT_, …)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service has; subclasses set `env_prefix` and add their own."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="QUNZHU_")

    service_name: str = "service"
    data_dir: Path = Field(default=Path("data"), description="Where embedded-mode files live.")
    database_url: str = Field(
        default="", description="SQLAlchemy async URL; default: SQLite file <data_dir>/<service>.sqlite3"
    )
    bus: Literal["local", "kafka"] = "local"
    bus_path: str = Field(default="", description="Local bus log file; default <data_dir>/bus.sqlite3")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of the topics the services create (3 on a production cluster)."
    )
    max_delivery_attempts: int = Field(default=5, ge=1)
    consume_batch_size: int = Field(
        default=100, ge=1, description="Records of a partition applied in one transaction (1 = one each)."
    )
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)
    auto_migrate: bool = Field(default=True, description="Run alembic upgrade head at startup.")
    run_consumers: bool = Field(default=True, description="Consume events in this process.")
    run_relay: bool = Field(default=True, description="Publish the outbox from this process.")
    json_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="JSON request bodies over this are a 413 (jsonbody.JsonBodyGuard)."
    )
    sqlite_write_wait_s: float = Field(
        default=5.0, gt=0, le=60, description="Embedded mode (SQLite): longest a request waits for the write "
        "connection before a 503 + Retry-After; far below a chat platform's webhook timeout.")
    sqlite_background_write_wait_s: float = Field(
        default=30.0, gt=0, description="Embedded mode (SQLite): longest background work (relay, consumers, "
        "workers) waits for the write connection; it always queues behind requests.")
    sqlite_consume_hold_s: float = Field(
        default=0.05, gt=0, le=60, description="Embedded mode (SQLite): a consumed batch whose transaction has "
        "held the write connection this long commits what it applied and goes on in a new transaction, so a "
        "request (a webhook) never waits behind a whole batch.")
    sqlite_read_pool_size: int = Field(
        default=4, ge=1, le=32, description="Embedded mode (SQLite): read-only connections for reads that never "
        "wait for the writer (WAL snapshots).")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(default="json", description="JSON lines, or text for humans.")
    internal_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key of the gateway's actor assertions (shared by every service); default: "
        "$QUNZHU_INTERNAL_KEY, else the key file <data_dir>/internal.key.",
    )

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.sqlite3')}"
        if not self.bus_path:
            self.bus_path = str(self.data_dir / "bus.sqlite3")
        return self
