"""Figures kept as plain numbers on a hot path and folded into their metrics when the registry is read
(qunzhu_common.metrics: ServiceMetrics.before_collect, DeferredHistogram — #19, the chat webhook)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from qunzhu_common.metrics import LATENCY_BUCKETS, DeferredCounter, DeferredHistogram, ServiceMetrics


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([*LATENCY_BUCKETS, 0.0, float("inf")]),
                          st.floats(min_value=-1, max_value=20, allow_nan=False)), max_size=40),
       st.integers(min_value=0, max_value=40))
def test_a_deferred_histogram_folds_into_what_observe_would_have_recorded(amounts, fold_at):
    direct = Histogram("h", "h", ["r"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry()).labels("x")
    folded_registry = CollectorRegistry()
    folded = Histogram("h", "h", ["r"], buckets=LATENCY_BUCKETS, registry=folded_registry).labels("x")
    deferred = DeferredHistogram(folded)
    for n, amount in enumerate(amounts):
        direct.observe(amount)
        deferred.observe(amount)
        if n == fold_at:
            deferred.fold()  # folding in the middle changes nothing either
    deferred.fold()
    deferred.fold()  # nothing new: a no-op
    assert [b.get() for b in folded._buckets] == [b.get() for b in direct._buckets]
    assert folded._sum.get() == direct._sum.get() or abs(folded._sum.get() - direct._sum.get()) < 1e-9


def test_every_read_of_the_registry_sees_the_figures_folded_first():
    metrics = ServiceMetrics("foldtest")
    child = metrics.http_requests.labels("POST", "/x", "200")
    pending = {"n": 0}

    def fold() -> None:
        child.inc(pending["n"])
        pending["n"] = 0

    metrics.before_collect(fold)
    pending["n"] = 3
    sample = {"method": "POST", "route": "/x", "status": "200"}
    assert metrics.registry.get_sample_value("qunzhu_foldtest_http_requests_total", sample) == 3
    pending["n"] = 2
    text = generate_latest(metrics.registry).decode()
    assert 'qunzhu_foldtest_http_requests_total{method="POST",route="/x",status="200"} 5.0' in text


def test_a_deferred_counter_folds_each_label_set_once_per_read():
    metrics = ServiceMetrics("countfold")
    deferred = DeferredCounter(metrics.http_requests)
    metrics.before_collect(deferred.fold)
    for status in ("200", "200", "404", "200"):
        deferred.inc("POST", "/x", status)

    def value(status: str) -> float | None:
        return metrics.registry.get_sample_value(
            "qunzhu_countfold_http_requests_total", {"method": "POST", "route": "/x", "status": status})

    assert (value("200"), value("404")) == (3, 1)
    assert (value("200"), value("404")) == (3, 1)  # a second read folds nothing twice
    deferred.inc("POST", "/x", "404")
    assert value("404") == 2
