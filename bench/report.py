"""Charts of each benchmark's history from bench/results.json: one PNG per benchmark into bench/reports/.

    .venv/bin/python bench/report.py [--results bench/results.json] [--out bench/reports]

`make bench-report` runs it (seconds: it reads results.json only, runs nothing); `make bench` runs it after
the benchmarks. Each chart plots the records' ratios over time against their limits (dashed, same colour):
a benchmark's top-level `ratio`, and the `ratio` of any section that has one (engagement's `scoring` and
`key_people`), `scale_out.speedup` for e2e runs with several processes (against 1.0: no gain), and for soak
the p99 over its goal per mode. A hollow marker is a record taken while other work kept the machine busy
(`noisy`). Most ratios are "higher is better"; time ratios (scheduler lateness / grace, key people seconds /
60 s, soak p99 / goal) are "lower is better" (the legend says which). Also writes bench/reports/README.md,
an index of the charts and of the flame graphs (`*.svg`, written by `make bench`) found there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
REPORTS = ROOT / "bench" / "reports"
# (benchmark, series) whose ratio is a time over a budget: lower is better. Everything else: higher.
LOWER_IS_BETTER = {("scheduler", "ratio"), ("engagement", "key_people"), ("soak", "embedded p99 / goal"),
                   ("soak", "distributed p99 / goal")}


@dataclass
class Series:
    name: str
    times: list[datetime] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    limits: list[float | None] = field(default_factory=list)
    noisy: list[bool] = field(default_factory=list)


def points(record: dict[str, Any]) -> Iterable[tuple[str, float, float | None]]:
    """(series, ratio, limit) of one results.json record; records without any give nothing."""
    if isinstance(record.get("ratio"), int | float):
        yield "ratio", float(record["ratio"]), _number(record.get("limit"))
    for key, value in record.items():
        if key in ("machine", "parameters") or not isinstance(value, dict):
            continue
        if isinstance(value.get("ratio"), int | float):
            limit = _number(value.get("limit"))
            if limit is None and "limit_s" in value:  # seconds / limit_s: the budget is 1.0
                limit = 1.0
            yield key, float(value["ratio"]), limit
        if key == "scale_out" and isinstance(value.get("speedup"), int | float):
            to = value.get("to", {})
            label = f"scale-out speedup ({to.get('gateways')}/{to.get('engagement')} ÷ 1/1)"
            yield label, float(value["speedup"]), 1.0  # above 1: more processes carried more
    goals = record.get("goals")
    if isinstance(goals, dict) and _number(goals.get("p99_ms")):
        for mode in ("embedded", "distributed"):
            p99 = _number((record.get(mode) or {}).get("p99_ms"))
            if p99 is not None:
                yield f"{mode} p99 / goal", p99 / float(goals["p99_ms"]), 1.0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def history(results: list[dict[str, Any]]) -> dict[str, dict[str, Series]]:
    """benchmark → series name → the series over the records, in time order."""
    out: dict[str, dict[str, Series]] = {}
    dated = []
    for record in results:
        try:
            dated.append((datetime.fromisoformat(record["timestamp"]), record))
        except (KeyError, TypeError, ValueError):
            continue
    for when, record in sorted(dated, key=lambda pair: pair[0]):
        name = str(record.get("benchmark", "unknown"))
        for series_name, ratio, limit in points(record):
            series = out.setdefault(name, {}).setdefault(series_name, Series(series_name))
            series.times.append(when)
            series.ratios.append(ratio)
            series.limits.append(limit)
            series.noisy.append(bool(record.get("noisy")))
    return out


def chart(benchmark: str, series: dict[str, Series], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    values: list[float] = []
    for i, s in enumerate(series.values()):
        colour = colours[i % len(colours)]
        label = f"{s.name} ({'lower' if (benchmark, s.name) in LOWER_IS_BETTER else 'higher'} is better)"
        ax.plot(s.times, s.ratios, "-", color=colour, linewidth=1, alpha=0.6)
        for noisy in (False, True):
            xs = [t for t, n in zip(s.times, s.noisy, strict=True) if n is noisy]
            ys = [r for r, n in zip(s.ratios, s.noisy, strict=True) if n is noisy]
            if xs:
                ax.plot(xs, ys, "o", color=colour, markerfacecolor="none" if noisy else colour,
                        label=label if not noisy or not any(not n for n in s.noisy) else None)
        limits = {limit for limit in s.limits if limit is not None}
        if len(limits) == 1:  # the usual case: one limit all along, a line across the chart
            ax.axhline(limits.pop(), linestyle="--", color=colour, linewidth=1, label=f"{s.name}: limit")
        elif limits:
            ax.step(s.times, [limit if limit is not None else float("nan") for limit in s.limits], "--",
                    where="post", color=colour, linewidth=1, label=f"{s.name}: limit")
        values += s.ratios + [limit for limit in s.limits if limit is not None]
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
    ax.set_title(f"bench/{benchmark}: ratio over time (hollow marker = noisy run)", fontsize=10)
    ax.set_ylabel("ratio to the reference of the same run")
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def build(results_path: Path = RESULTS, out_dir: Path = REPORTS) -> list[Path]:
    """One PNG per benchmark with at least one ratio in results.json, and the index; the PNGs written."""
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    if not isinstance(results, list):
        raise SystemExit(f"{results_path} is not a JSON list")
    written = [chart(name, series, out_dir / f"{name}.png") for name, series in sorted(history(results).items())]
    index(out_dir, written)
    return written


def index(out_dir: Path, charts: list[Path]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Benchmark reports", "",
             "Generated by `bench/report.py` (`make bench-report`, and `make bench` after the benchmarks) from",
             "`bench/results.json`; flame graphs by `make bench` (py-spy). See [`../README.md`](../README.md).", ""]
    for png in charts:
        lines += [f"## {png.stem}", "", f"![{png.stem} ratio over time]({png.name})", ""]
    flames = sorted(out_dir.glob("*.svg"))
    if flames:
        lines += ["## Flame graphs (py-spy)", ""]
        lines += [f"- [{svg.stem}]({svg.name})" for svg in flames]
        lines.append("")
    (out_dir / "README.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args()
    for path in build(args.results, args.out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
