"""bench/report.py: each benchmark's history from a results.json becomes a PNG (no timings asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def records() -> list[dict[str, object]]:
    return [
        {"benchmark": "bus", "timestamp": "2026-11-26T12:48:56+00:00", "ratio": 0.04, "limit": 0.5, "noisy": True},
        {"benchmark": "bus", "timestamp": "2026-11-26T15:06:06+00:00", "ratio": 0.11, "limit": 0.5, "noisy": False},
        {"benchmark": "engagement", "timestamp": "2026-11-26T13:27:38+00:00",
         "scoring": {"ratio": 0.0016, "limit": 0.5}, "key_people": {"ratio": 0.229, "limit_s": 60.0}},
        {"benchmark": "e2e", "timestamp": "2026-12-07T13:00:00+00:00", "ratio": 0.7, "limit": 0.9,
         "scale_out": {"to": {"gateways": 2, "engagement": 2}, "speedup": 1.4}},
        {"benchmark": "soak", "timestamp": "2026-12-07T06:54:45+00:00", "goals": {"p99_ms": 250},
         "distributed": {"p99_ms": 358.2}},
        {"benchmark": "membership", "timestamp": "2026-12-07T07:00:00+00:00", "note": "no ratio: no chart"},
    ]


def test_one_png_per_benchmark_with_a_ratio(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(records()))
    written = report.build(results, tmp_path / "reports")
    assert sorted(p.name for p in written) == ["bus.png", "e2e.png", "engagement.png", "soak.png"]
    for png in written:
        assert png.read_bytes()[:8] == PNG_MAGIC
    index = (tmp_path / "reports" / "README.md").read_text()
    assert "(bus.png)" in index and "membership" not in index


def test_series_of_each_record_kind() -> None:
    by = report.history(records())
    assert by["bus"]["ratio"].ratios == [0.04, 0.11] and by["bus"]["ratio"].noisy == [True, False]
    assert by["engagement"]["key_people"].limits == [1.0]  # seconds / 60 s: the budget is 1.0
    assert by["engagement"]["scoring"].limits == [0.5]
    assert by["e2e"]["scale-out speedup (2/2 ÷ 1/1)"].ratios == [1.4]
    assert by["e2e"]["scale-out speedup (2/2 ÷ 1/1)"].limits == [1.0]
    assert round(by["soak"]["distributed p99 / goal"].ratios[0], 3) == 1.433
    assert "membership" not in by


def test_an_empty_history_writes_only_the_index(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text("[]")
    assert report.build(results, tmp_path / "reports") == []
    assert (tmp_path / "reports" / "README.md").exists()
