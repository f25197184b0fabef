"""Grafana dashboards as code: `python deploy/grafana/build_dashboards.py` writes dashboards/*.json.

Every query uses only metric names the services export (tests/integration/test_observability.py
evaluates each one against a real Prometheus scraping the real services). Names follow
`qunzhu_<service>_<what>_<unit>`; `{__name__=~"qunzhu_[a-z]+_…"}` selects one kind across services.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "qunzhu-prometheus"}
OUT = Path(__file__).resolve().parent / "dashboards"
RATE = "$__rate_interval"


def every(what: str, selector: str = "") -> str:
    """Selector of one metric kind across all services, e.g. every("http_requests_total")."""
    extra = f", {selector}" if selector else ""
    return f'{{__name__=~"qunzhu_[a-z]+_{what}"{extra}}}'


@dataclass
class Panel:
    title: str
    expr: str | list[tuple[str, str]]  # one query, or (query, legend) pairs
    unit: str = "short"
    legend: str = ""
    kind: str = "timeseries"
    width: int = 12
    description: str = ""

    def queries(self) -> list[tuple[str, str]]:
        return [(self.expr, self.legend)] if isinstance(self.expr, str) else self.expr


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel] = field(default_factory=list)

    def render(self) -> dict:
        rendered, x, y = [], 0, 0
        for index, panel in enumerate(self.panels, start=1):
            if x + panel.width > 24:
                x, y = 0, y + 8
            rendered.append(
                {
                    "id": index,
                    "type": panel.kind,
                    "title": panel.title,
                    "description": panel.description,
                    "datasource": DATASOURCE,
                    "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "options": {},
                    "targets": [
                        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(panel.queries())
                    ],
                }
            )
            x += panel.width
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["qunzhu"],
            "timezone": "browser",
            "schemaVersion": 39,
            "version": 1,
            "editable": True,
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": []},
            "annotations": {"list": []},
            "panels": rendered,
        }


def quantile(q: float, histogram: str, by: str = "job") -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({every(histogram + '_bucket')}[{RATE}])))"


def _ratio_5xx() -> str:
    server_errors = every("http_requests_total", 'status=~"5.."')
    errors = f"sum by (job) (rate({server_errors}[{RATE}]))"
    total = f'sum by (job) (rate({every("http_requests_total")}[{RATE}]))'
    # `or … * 0` keeps a zero line for services without any 5xx instead of no data.
    return f"({errors} or {total} * 0) / {total}"


OVERVIEW = Dashboard(
    "qunzhu-overview",
    "Qunzhu — Overview",
    "Rate, errors and duration of every service's HTTP API.",
    [
        Panel("Services up", 'up{job=~"gateway|membership|content|engagement"}', legend="{{job}}", kind="stat",
              width=24),
        Panel("Requests per second", f'sum by (job) (rate({every("http_requests_total")}[{RATE}]))',
              unit="reqps", legend="{{job}}"),
        Panel("5xx ratio", _ratio_5xx(), unit="percentunit", legend="{{job}}"),
        Panel(
            "Latency p50 / p99",
            [
                (quantile(0.5, "http_request_duration_seconds"), "p50 {{job}}"),
                (quantile(0.99, "http_request_duration_seconds"), "p99 {{job}}"),
            ],
            unit="s",
        ),
        Panel("Requests in progress", f'sum by (job) ({every("http_requests_in_progress")})', legend="{{job}}"),
        Panel("Busiest routes", f'topk(10, sum by (job, route, status) (rate({every("http_requests_total")}[{RATE}])))',
              unit="reqps", legend="{{job}} {{route}} {{status}}", width=24),
    ],
)

EVENT_STREAMING = Dashboard(
    "qunzhu-event-streaming",
    "Qunzhu — Event streaming",
    "Outbox → bus → inbox: what is produced and consumed, how far consumers lag, what was dead-lettered.",
    [
        Panel("Events produced per second", f'sum by (job, topic) (rate({every("events_produced_total")}[{RATE}]))',
              unit="ops", legend="{{job}} → {{topic}}"),
        Panel("Events consumed per second by outcome",
              f'sum by (job, outcome) (rate({every("events_consumed_total")}[{RATE}]))',
              unit="ops", legend="{{job}} {{outcome}}"),
        Panel("Consumer lag (records)", f'sum by (job, topic) ({every("consumer_lag_records")})',
              legend="{{job}} ← {{topic}}"),
        Panel("Handler duration p99",
              quantile(0.99, "event_handler_duration_seconds"),
              unit="s", legend="{{job}}"),
        Panel("Outbox backlog", f'{every("outbox_backlog_events")}', legend="{{job}}"),
        Panel("Outbox publish failures", f'sum by (job) (increase({every("outbox_publish_failures_total")}[{RATE}]))',
              legend="{{job}}"),
        Panel("Dead-lettered records", f'sum by (job, topic) (increase({every("dlq_records_total")}[{RATE}]))',
              legend="{{job}} {{topic}}.dlq"),
        Panel("Handler failures (each retry counts)",
              f'sum by (job, type) (increase({every("events_failed_total")}[{RATE}]))',
              legend="{{job}} {{type}}"),
    ],
)

def _braces(selector: str) -> str:
    return f"{{{selector}}}" if selector else ""


def rate(metric: str, by: str = "", selector: str = "") -> str:
    """Per-second rate of one service's counter, summed (by the given labels)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{_braces(selector)}[{RATE}]))"


def increase(metric: str, by: str = "", selector: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({metric}{_braces(selector)}[{RATE}]))"


def yuan_per_hour(metric: str) -> str:
    """A fen counter as ¥ per hour, by currency."""
    return f"{rate(metric, 'currency')} * 3600 / 100"


M, C, E, G = "qunzhu_membership_", "qunzhu_content_", "qunzhu_engagement_", "qunzhu_gateway_"
SCORED = rate(E + "activities_scored_total")
EFFECTIVE = rate(E + "activities_scored_total", selector='rule_type!~"noise|none"')
PAYMENTS_PROCESSED = 'topic="payments.events.v1", type="payment.succeeded", outcome="processed"'

COMMUNITY_HEALTH = Dashboard(
    "qunzhu-community-health",
    "Qunzhu — Community health",
    "Who is in, who takes part, who drifts away: members, effective activity, points, levels, lurkers, "
    "removal recommendations, dead groups, scholarships.",
    [
        Panel("Active members", f'sum({M}members{{status=~"active|pending_ritual"}})', kind="stat", width=6,
              description="Members with a live membership (the ritual may still be pending)."),
        Panel("Applications pending", f"{M}applications_pending", kind="stat", width=6),
        Panel("Members by status", f"sum by (status) ({M}members)", legend="{{status}}"),
        Panel("Activities scored per second, by verdict", rate(E + "activities_scored_total", "rule_type"),
              unit="ops", legend="{{rule_type}}",
              description="Effective activity is everything but `noise` and `none` (the classifier's verdict)."),
        Panel("Effective share of scored activity",
              f"({EFFECTIVE} or {SCORED} * 0) / {SCORED}",
              unit="percentunit", legend="effective"),
        Panel("Points awarded, by rule type", increase(E + "points_awarded_points_total", "rule_type"),
              legend="{{rule_type}}", description="Reversals subtract."),
        Panel("Activities waiting for their member", increase(E + "activities_pending_total"), legend="pending"),
        Panel("Members by level", f"sum by (level) ({E}members_by_level_members)", legend="level {{level}}"),
        Panel("Levels reached", increase(E + "levels_reached_total", "level"), legend="level {{level}}"),
        Panel("Lurkers flagged", increase(E + "lurkers_flagged_total"), legend="lurkers", width=8),
        Panel("Removals recommended, by reason", increase(E + "removals_recommended_total", "reason"),
              legend="{{reason}}", width=8),
        Panel("Rule strikes (群规), by kind", increase(E + "strikes_total", "kind"), legend="{{kind}}", width=8),
        Panel("Dead groups flagged", increase(E + "dead_groups_flagged_total"), legend="groups at risk", width=8),
        Panel("Scholarships awarded", increase(E + "scholarships_awarded_total"), legend="scholarships", width=8),
        Panel("Key-people computations", increase(E + "key_people_runs_total"), legend="runs", width=8),
    ],
)

REVENUE = Dashboard(
    "qunzhu-revenue",
    "Qunzhu — Revenue",
    "The paywall: paid conversions, renewals, money in and out (fen counters shown in ¥), rejected payments.",
    [
        Panel("Revenue, last 24 h", f"sum by (currency) (increase({M}revenue_fen_total[24h])) / 100",
              unit="currencyCNY", kind="stat", width=8, legend="{{currency}}"),
        Panel("Refunds, last 24 h", f"sum by (currency) (increase({M}refunds_fen_total[24h])) / 100",
              unit="currencyCNY", kind="stat", width=8, legend="{{currency}}"),
        Panel("Paid conversions, last 24 h", f"sum(increase({M}paid_conversions_total[24h]))", kind="stat",
              width=8),
        Panel("Paid conversions and renewals",
              [(increase(M + "paid_conversions_total"), "new members"), (increase(M + "renewals_total"), "renewals")]),
        Panel("Revenue and refunds (¥ per hour)",
              [(yuan_per_hour(M + "revenue_fen_total"), "revenue {{currency}}"),
               (yuan_per_hour(M + "refunds_fen_total"), "refunds {{currency}}")],
              unit="currencyCNY"),
        Panel("Net revenue (¥ per hour)",
              f'({rate(M + "revenue_fen_total", "currency")} - ({rate(M + "refunds_fen_total", "currency")} or '
              f'{rate(M + "revenue_fen_total", "currency")} * 0)) * 3600 / 100',
              unit="currencyCNY", legend="net {{currency}}"),
        Panel("Payments rejected, by code", increase(M + "payments_rejected_total", "code"), legend="{{code}}",
              description="Each rejected payment gets a refund requested."),
        Panel("Reconciliation differences with the providers",
              "max by (provider, kind) (qunzhu_gateway_reconciliation_differences)", legend="{{provider}} {{kind}}",
              description="What the last daily reconciliation found between our orders, payments and refunds and "
                          "the provider's records; each is listed at GET /api/v1/ops/reconciliation."),
        Panel("Payments held for review", increase("qunzhu_gateway_payment_reviews_total", "provider, reason"),
              legend="{{provider}} {{reason}}",
              description="Paid with another amount or currency than the order: not granted, listed at "
                          "GET /api/v1/ops/payment-reviews."),
        Panel("Payments processed vs. membership changes",
              [(increase(M + "events_consumed_total", selector=PAYMENTS_PROCESSED), "payment.succeeded processed"),
               (f'{increase(M + "paid_conversions_total")} + {increase(M + "renewals_total")} + '
                f'{increase(M + "payments_rejected_total")}', "conversions + renewals + rejections")],
              description="A payment event changes a membership or is rejected; a repeat of an applied payment "
                          "(Stripe's checkout and payment-intent events) changes nothing."),
        Panel("Expirations and unpaid joins", [(increase(M + "expirations_total"), "expired"),
                                               (increase(M + "unpaid_joins_flagged_total"), "unpaid joins")]),
        Panel("Checkout orders, by outcome", increase("qunzhu_gateway_orders_total", "provider, channel, outcome",
                                                      'outcome!~"granted|refunded"'),
              legend="{{provider}} {{channel}} {{outcome}}",
              description="Orders opened at the provider, refused by it, left unopened while it was unreachable, "
                          "and expired unpaid."),
        Panel("Payment reviews: held and decided",
              [(increase("qunzhu_gateway_payment_reviews_total", "provider"), "held {{provider}}"),
               (increase("qunzhu_gateway_orders_total", "provider, outcome", 'outcome=~"granted|refunded"'),
                "{{outcome}} {{provider}}")],
              description="Held: paid with another amount or currency than the order. Decided by ops at "
                          "POST /api/v1/ops/payment-reviews/{order_id}/decision: granted, or refunded."),
        Panel("Payment notifications answered 503 for a retry",
              increase("qunzhu_gateway_webhook_retries_requested_total", "platform, reason"),
              legend="{{platform}} {{reason}}",
              description="Authentic but not processable because of Qunzhu's own state or configuration (APIv3 key "
                          "that does not decrypt, order not known yet): the provider retries; kept for replay "
                          "(alert WebhookRetriesRequested)."),
        Panel("Quarantine replays, by outcome",
              increase("qunzhu_gateway_quarantine_replays_total", "platform, outcome",
                       'platform=~"stripe|wechatpay"'),
              legend="{{platform}} {{outcome}}",
              description="Payment notifications replayed by ops (POST /api/v1/ops/quarantine/{id}/replay) after "
                          "a fix."),
    ],
)

SCHEDULING = Dashboard(
    "qunzhu-scheduling",
    "Qunzhu — Scheduling",
    "Content's scheduler and broadcast fan-out (lateness, occurrences, deliveries, live relay) and "
    "membership's expiry/reminder scheduler.",
    [
        Panel("Content scheduler lateness p50 / p99",
              [(f"histogram_quantile(0.5, sum by (kind, le) (rate({C}scheduler_lateness_seconds_bucket[{RATE}])))",
                "p50 {{kind}}"),
               (f"histogram_quantile(0.99, sum by (kind, le) (rate({C}scheduler_lateness_seconds_bucket[{RATE}])))",
                "p99 {{kind}}")],
              unit="s"),
        Panel("Occurrences by outcome", increase(C + "scheduler_occurrences_total", "kind, outcome, reason"),
              legend="{{kind}} {{outcome}} {{reason}}"),
        Panel("Broadcast deliveries by status", rate(C + "broadcast_deliveries_total", "platform, status"),
              unit="ops", legend="{{platform}} {{status}}"),
        Panel("Live relay latency p99",
              f"histogram_quantile(0.99, sum by (le) (rate({C}relay_latency_seconds_bucket[{RATE}])))",
              unit="s", legend="p99"),
        Panel("Deliveries held by platform rate limits", increase(C + "broadcast_rate_limited_total", "platform"),
              legend="{{platform}}"),
        Panel("Membership scheduler passes", increase(M + "scheduler_runs_total", "outcome"), legend="{{outcome}}"),
        Panel("Membership scheduler lateness", f"{M}scheduler_lateness_seconds", unit="s", legend="{{instance}}",
              description="How late the oldest due expiry/reminder was when the last pass claimed it."),
        Panel("Reminders sent", increase(M + "reminders_total", "kind"), legend="{{kind}}"),
    ],
)

CHAT_PLATFORMS = Dashboard(
    "qunzhu-chat-platforms",
    "Qunzhu — Chat platforms and webhooks",
    "The gateway's edges: webhooks in (chat platforms, payment providers), bot actions out, public API limits.",
    [
        Panel("Webhooks by outcome", rate(G + "webhooks_total", "platform, outcome"), unit="ops",
              legend="{{platform}} {{outcome}}"),
        Panel("Webhook verification failures", increase(G + "webhook_verification_failures_total", "platform, reason"),
              legend="{{platform}} {{reason}}", description="Refused with 401: forged, stale, unsigned."),
        Panel("Events from webhooks, by type", rate(G + "webhook_events_total", "type"), unit="ops",
              legend="{{type}}"),
        Panel("Bot actions by outcome", rate(G + "bot_actions_total", "platform, outcome"), unit="ops",
              legend="{{platform}} {{outcome}}"),
        Panel("Bot action duration p99",
              f"histogram_quantile(0.99, sum by (platform, le) (rate({G}bot_action_duration_seconds_bucket[{RATE}])))",
              unit="s", legend="{{platform}}"),
        Panel("Public API requests refused (429)", increase(G + "rate_limited_requests_total"), legend="429"),
        Panel("Logins by method and outcome", increase(G + "logins_total", "method, outcome"),
              legend="{{method}} {{outcome}}", width=24),
    ],
)

DASHBOARDS = [OVERVIEW, EVENT_STREAMING, COMMUNITY_HEALTH, REVENUE, SCHEDULING, CHAT_PLATFORMS]


def write_all() -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in DASHBOARDS:
        path = OUT / f"{dashboard.uid}.json"
        path.write_text(json.dumps(dashboard.render(), indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
