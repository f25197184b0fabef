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

DASHBOARDS = [OVERVIEW, EVENT_STREAMING]


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
