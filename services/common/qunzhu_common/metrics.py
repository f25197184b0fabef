"""Prometheus metrics of one service: `qunzhu_<service>_<what>_<unit>`, bounded labels only.

Each service has its own CollectorRegistry so four services can share a process in embedded mode
and still each expose exactly their own figures at their own /metrics.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qunzhu_common.bus.base import ConsumerObserver, OutgoingRecord, Record
from qunzhu_common.inbox import ConsumerMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _BeforeCollect:
    """A collector with no metrics of its own, registered before all others: its hooks fold figures that a
    hot path keeps as plain numbers into their metrics whenever the registry is read (a scrape, a test's
    `get_sample_value`), so every reader sees them exact."""

    def __init__(self) -> None:
        self.hooks: list[Callable[[], None]] = []

    def describe(self) -> list[Any]:  # registration asks for names: none, and no hook run
        return []

    def collect(self) -> list[Any]:
        for hook in self.hooks:
            hook()
        return []


class DeferredCounter:
    """A labelled counter's increments counted locally, per label values, and folded in when the registry is
    read: `inc` is a dict update instead of prometheus_client's label lookup and locked increment."""

    def __init__(self, counter: Any) -> None:
        self._counter = counter
        self._pending: dict[tuple[str, ...], int] = {}

    def inc(self, *labels: str) -> None:
        self._pending[labels] = self._pending.get(labels, 0) + 1

    def fold(self) -> None:
        pending, self._pending = self._pending, {}
        for labels, count in pending.items():
            self._counter.labels(*labels).inc(count)


class DeferredHistogram:
    """A histogram child's observations counted locally and folded in when the registry is read: `observe`
    costs a bisect and two additions instead of two locked increments (prometheus_client's own). Folds into
    the child's buckets and sum as `Histogram.observe` would (tested against it)."""

    def __init__(self, child: Any) -> None:
        self._child = child
        self._bounds: list[float] = list(child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1  # the first bound >= amount, as observe() picks
        self._sum += amount

    def fold(self) -> None:
        counts, self._counts = self._counts, [0] * len(self._bounds)
        amount, self._sum = self._sum, 0.0
        if not any(counts):
            return
        self._child._sum.inc(amount)
        for bucket, count in zip(self._child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


class ServiceMetrics(ConsumerMetrics, ConsumerObserver):
    def __init__(self, service: str) -> None:
        # `_created` series double every counter and no dashboard uses them.
        disable_created_metrics()
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._before_collect = _BeforeCollect()
        self.registry.register(self._before_collect)  # first: its hooks run before any metric is read
        prefix = f"qunzhu_{service}_"
        r = self.registry
        self.http_requests = Counter(
            prefix + "http_requests_total", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=r,
        )
        self.http_duration = Histogram(
            prefix + "http_request_duration_seconds", "HTTP request duration by route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.http_in_progress = Gauge(
            prefix + "http_requests_in_progress", "HTTP requests being served.", ["method"], registry=r
        )
        self.events_produced = Counter(
            prefix + "events_produced_total", "Events published from the outbox to the bus.",
            ["topic", "type"], registry=r,
        )
        self.events_consumed = Counter(
            prefix + "events_consumed_total",
            "Events consumed, by outcome (processed, duplicate, ignored).",
            ["topic", "type", "outcome"], registry=r,
        )
        self.events_failed = Counter(
            prefix + "events_failed_total", "Handler attempts that raised (each retry counts).",
            ["topic", "type"], registry=r,
        )
        self.handler_duration = Histogram(
            prefix + "event_handler_duration_seconds", "Time to process one event, inbox included.",
            ["topic", "type"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.dlq_records = Counter(
            prefix + "dlq_records_total", "Records this service dead-lettered, by source topic.",
            ["topic"], registry=r,
        )
        self.consumer_lag = Gauge(
            prefix + "consumer_lag_records", "Records behind the partition head after the last commit.",
            ["topic", "partition"], registry=r,
        )
        self.outbox_backlog = Gauge(
            prefix + "outbox_backlog_events", "Outbox rows not yet published.", registry=r
        )
        # Embedded mode's SQLite write gate (qunzhu_common.db.writegate); not prefixed with the service, so
        # one dashboard panel compares the services.
        self.db_write_wait = Histogram(
            "qunzhu_db_write_wait_seconds", "Time a transaction waited for the SQLite write connection.",
            ["service", "priority"], buckets=(0.001,) + LATENCY_BUCKETS, registry=r,
        )
        self.db_write_timeouts = Counter(
            "qunzhu_db_write_timeouts_total", "Transactions refused after the bounded wait for the SQLite "
            "write connection.", ["service", "priority"], registry=r,
        )
        for priority in ("request", "background"):
            self.db_write_timeouts.labels(service, priority)
        self.outbox_publish_failures = Counter(
            prefix + "outbox_publish_failures_total", "Failed attempts to publish an outbox batch.", registry=r
        )

    def before_collect(self, hook: Callable[[], None]) -> None:
        """Run `hook` whenever this registry is read, before any metric is: for figures kept as plain
        numbers on a hot path (the chat webhook) and folded into their metrics then."""
        self._before_collect.hooks.append(hook)

    def initialise_consumer(self, handled: list[tuple[str, str]]) -> None:
        """Create the series of every (topic, type) handled, at 0, so dashboards and alerts see them
        before the first event (or the first failure) ever happens."""
        for topic, type_ in handled:
            self.dlq_records.labels(topic)
            self.events_failed.labels(topic, type_)
            for outcome in ("processed", "duplicate"):
                self.events_consumed.labels(topic, type_, outcome)

    # -- ConsumerMetrics ------------------------------------------------------------------
    def consumed(self, topic: str, type_: str, outcome: str) -> None:
        self.events_consumed.labels(topic, type_, outcome).inc()

    def failed(self, topic: str, type_: str) -> None:
        self.events_failed.labels(topic, type_).inc()

    def handled_in(self, topic: str, type_: str, seconds: float) -> None:
        self.handler_duration.labels(topic, type_).observe(seconds)

    def consumed_many(self, topic: str, type_: str, outcome: str, count: int) -> None:
        self.events_consumed.labels(topic, type_, outcome).inc(count)

    def handled_many(self, topic: str, type_: str, seconds: list[float]) -> None:
        child = self.handler_duration.labels(topic, type_)  # one label lookup per kind, not per event
        for value in seconds:
            child.observe(value)

    # -- ConsumerObserver -----------------------------------------------------------------
    def lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(lag)

    def dead_lettered(self, record: Record, error: BaseException) -> None:
        self.dlq_records.labels(record.topic).inc()

    # -- outbox relay -----------------------------------------------------------------------
    def published(self, records: list[OutgoingRecord], types: list[str]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for record, type_ in zip(records, types, strict=True):
            counts[(record.topic, type_)] = counts.get((record.topic, type_), 0) + 1
        for (topic, type_), count in counts.items():  # one label lookup per kind in the batch
            self.events_produced.labels(topic, type_).inc(count)

    def backlog(self, size: int) -> None:
        self.outbox_backlog.set(size)

    def publish_failed(self, _error: BaseException) -> None:
        self.outbox_publish_failures.inc()

    # -- SQLite write gate ------------------------------------------------------------------
    def db_write_waited(self, priority: str, seconds: float) -> None:
        self.db_write_wait.labels(self.service, priority).observe(seconds)

    def db_write_timed_out(self, priority: str) -> None:
        self.db_write_timeouts.labels(self.service, priority).inc()

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class HttpMetricsMiddleware:
    """RED metrics per route template (never the raw path, which would explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = self.metrics.http_in_progress.labels(method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_progress.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_duration.labels(method, template).observe(time.perf_counter() - started)


def metrics_endpoint(metrics: ServiceMetrics) -> Any:
    async def endpoint(_request: Request) -> Response:
        return metrics.render()

    return endpoint
