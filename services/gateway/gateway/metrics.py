"""The gateway's own figures, on its service registry: `qunzhu_gateway_<what>_<unit>`, bounded labels."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from qunzhu_common.metrics import LATENCY_BUCKETS, DeferredCounter

LOGIN_CODE_OUTCOMES = ("sent", "no_connector", "blacklisted", "too_many_live_codes")
REFUND_OUTCOMES = {
    "stripe": ("submitted", "already_refunded", "retried", "failed"),
    "wechatpay": ("submitted", "already_refunded", "retried", "failed"),
    "manual": ("manual",),
}
ORDER_CHANNELS = {"stripe": ("checkout",), "wechatpay": ("jsapi", "native", "h5")}
ORDER_OUTCOMES = ("opened", "failed", "unavailable", "expired", "granted", "refunded")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, before_collect: Callable[[Callable[[], None]], None]) -> None:
        p = "qunzhu_gateway_"
        self.verification_failures = Counter(
            p + "webhook_verification_failures_total",
            "Webhooks refused (401) by platform and reason (missing, signature, secret, timestamp…).",
            ["platform", "reason"], registry=registry,
        )
        self.webhooks = Counter(
            p + "webhooks_total",
            "Verified webhooks by platform and outcome (accepted, ignored, duplicate, quarantined, rate_limited).",
            ["platform", "outcome"], registry=registry,
        )
        self.retries_requested = Counter(
            p + "webhook_retries_requested_total",
            "Verified payment notifications answered 503 so the provider retries, by platform and reason "
            "(cannot_decrypt, order_unknown, payment_unknown): Qunzhu's own state or configuration.",
            ["platform", "reason"], registry=registry,
        )
        self.replays = Counter(
            p + "quarantine_replays_total",
            "Quarantined deliveries replayed by ops, by platform and outcome (accepted, ignored, duplicate, "
            "quarantined, retry, refused).",
            ["platform", "outcome"], registry=registry,
        )
        self.webhook_events = Counter(
            p + "webhook_events_total", "Events written to the outbox from webhooks, by type.",
            ["type"], registry=registry,
        )
        self.join_requests = Counter(
            p + "join_requests_total",
            "Requests to join a chat group decided at the door (OneBot), by platform, decision (approved, "
            "refused, undecided) and why (member, admit_policy, paid_group, ignore_policy, "
            "membership_unavailable, no_membership, or the membership's status).",
            ["platform", "decision", "why"], registry=registry,
        )
        self.bot_actions = Counter(
            p + "bot_actions_total",
            "Bot action attempts by platform, action and outcome (completed, retried, failed, duplicate).",
            ["platform", "action", "outcome"], registry=registry,
        )
        self.bot_action_duration = Histogram(
            p + "bot_action_duration_seconds", "Time of one call to a platform.", ["platform"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.rate_limited = Counter(
            p + "rate_limited_requests_total", "Public API requests refused with 429.", registry=registry
        )
        self.logins = Counter(
            p + "logins_total", "Login attempts by method and outcome.", ["method", "outcome"],
            registry=registry,
        )
        self.login_codes = Counter(
            p + "login_codes_total",
            "One-time login codes asked for, by outcome: sent, or why none was (no_connector, blacklisted, "
            "too_many_live_codes); the caller gets 202 either way.",
            ["outcome"], registry=registry,
        )
        self.refunds = Counter(
            p + "refunds_total",
            "Refund attempts by provider and outcome (submitted, already_refunded, manual, retried, failed).",
            ["provider", "outcome"], registry=registry,
        )
        self.orders = Counter(
            p + "orders_total",
            "Checkout orders by provider, channel and outcome (opened, failed, unavailable, expired; after a "
            "payment review: granted, refunded).",
            ["provider", "channel", "outcome"], registry=registry,
        )
        self.payment_reviews = Counter(
            p + "payment_reviews_total",
            "Payments held for review instead of granted: the amount or currency differs from the order.",
            ["provider", "reason"], registry=registry,
        )
        self.reconciliation_differences = Gauge(
            p + "reconciliation_differences",
            "Differences the last reconciliation with the provider found, by provider and kind.",
            ["provider", "kind"], registry=registry,
        )
        self.reconciliation_runs = Counter(
            p + "reconciliation_runs_total", "Reconciliation runs by provider and outcome (ok, failed).",
            ["provider", "outcome"], registry=registry,
        )
        self._webhooks_deferred = DeferredCounter(self.webhooks)  # see delivered()
        self._events_deferred = DeferredCounter(self.webhook_events)
        self.initialise()
        before_collect(self.fold)

    def initialise(self) -> None:
        """Create the bounded label sets of rare outcomes at 0 (dashboards and alerts see them at once)."""
        for method in ("code", "telegram"):
            for outcome in ("ok", "refused"):
                self.logins.labels(method, outcome)
        for outcome in LOGIN_CODE_OUTCOMES:
            self.login_codes.labels(outcome)
        for provider in ("stripe", "wechatpay"):
            for reason in ("cannot_decrypt", "order_unknown", "payment_unknown"):
                self.retries_requested.labels(provider, reason)
        for provider, outcomes in REFUND_OUTCOMES.items():
            for outcome in outcomes:
                self.refunds.labels(provider, outcome)
        for reason in ("amount", "currency"):
            self.payment_reviews.labels("stripe", reason)
            self.payment_reviews.labels("wechatpay", reason)
        for provider, channels in ORDER_CHANNELS.items():
            for channel in channels:
                for outcome in ORDER_OUTCOMES:
                    self.orders.labels(provider, channel, outcome)
            self.replays.labels(provider, "accepted")

    def refused(self, platform: str, reason: str) -> None:
        self.verification_failures.labels(platform, reason).inc()

    def delivered(self, platform: str, status: str, event_types: list[str]) -> None:
        """A chat delivery answered `status`, with the types of the events it wrote: counted as plain
        numbers and folded into `webhooks_total` / `webhook_events_total` when the registry is read (the
        route is the gateway's hottest; `labels(...).inc()` takes a lock and validates on every call)."""
        for event_type in event_types:
            self._events_deferred.inc(event_type)
        self._webhooks_deferred.inc(platform, status)

    def fold(self) -> None:
        self._webhooks_deferred.fold()
        self._events_deferred.fold()
