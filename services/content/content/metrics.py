"""Content's business metrics, registered on the service's own registry (its /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# The platforms of the default rate limits (settings.platform_rate_per_s), pre-created at 0.
PLATFORMS = ("wechat", "wecom", "qq", "telegram", "discord")
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ContentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.scheduler_lateness = Histogram(
            "qunzhu_content_scheduler_lateness_seconds",
            "How late a fired occurrence fired after its due time.",
            ["kind"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.occurrences = Counter(
            "qunzhu_content_scheduler_occurrences_total",
            "Due occurrences by outcome (fired, skipped, failed) and skip reason.",
            ["kind", "outcome", "reason"],
            registry=registry,
        )
        self.deliveries = Counter(
            "qunzhu_content_broadcast_deliveries_total",
            "Per-group broadcast deliveries reaching a status (sent, failed, retried, confirmed).",
            ["platform", "status"],
            registry=registry,
        )
        self.relay_latency = Histogram(
            "qunzhu_content_relay_latency_seconds",
            "From a guest/host message in the source group to its relay command for a target group.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "qunzhu_content_broadcast_rate_limited_total",
            "Deliveries held back by a platform's rate limit during one fan-out pass.",
            ["platform"],
            registry=registry,
        )
        self.initialise()

    def initialise(self) -> None:
        """Create the rare outcomes' series at 0, so dashboards and alerts see them before they happen."""
        for platform in PLATFORMS:
            self.rate_limited.labels(platform)
            for status in ("failed", "retried"):
                self.deliveries.labels(platform, status)
