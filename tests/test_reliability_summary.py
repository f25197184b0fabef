"""The end-of-suite summary the fault and security suites report through (tests/summary.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import summary


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    # An empty summary for each test, and the suite's own counts (security tests ran before) put back after.
    saved = summary._STATE  # noqa: SLF001
    summary.reset()
    yield
    summary._STATE = saved  # noqa: SLF001


class Reporter:
    def __init__(self) -> None:
        self.text: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.text.append(f"-- {title}")

    def write_line(self, line: str) -> None:
        self.text.append(line)


def test_nothing_reported_prints_nothing() -> None:
    reporter = Reporter()
    summary.write(reporter)
    assert reporter.text == []


def test_counts_add_up_and_print_once() -> None:
    summary.load("faults", webhooks=10_000, seconds=200, refused=37, detail="chat p50 9 ms")
    summary.fault("kafka broker restart")
    summary.fault("kafka broker restart")
    summary.fault("postgresql restart")
    summary.bad_inputs("forged signature", 12)
    summary.bad_inputs("oversized body")
    summary.records("faults", checked=10_000, lost=0)
    summary.records("security", checked=40, lost=1, duplicated=2)
    first, second = Reporter(), Reporter()
    summary.write(first)
    summary.write(second)  # a second conftest calling it prints nothing more
    assert second.text == []
    assert first.text == [
        "-- reliability and security summary",
        "load held: faults: 10,000 webhooks accepted in 200 s (50/s), 37 refused answers retried; chat p50 9 ms",
        "faults survived: 3 (kafka broker restart ×2, postgresql restart ×1)",
        "bad inputs tried: 13 (forged signature ×12, oversized body ×1)",
        "records lost: 1 of 10,040 checked, 2 duplicated (faults: 0 of 10,000, security: 1 of 40, 2 duplicated)",
    ]
