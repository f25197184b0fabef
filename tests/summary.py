"""What the reliability and security suites proved, counted while they run and printed once at the end.

Tests report through four calls; a conftest prints the lines with `write(terminalreporter)` from its
`pytest_terminal_summary` hook (printed once per session however many conftests call it):

    from tests import summary
    summary.load("fault suite", webhooks=10_000, seconds=182.4, refused=37)  # load held
    summary.fault("kafka broker restarted")                                   # a fault survived
    summary.bad_inputs("forged webhook signature", 12)                        # bad inputs tried
    summary.records("fault suite", checked=10_000, lost=0, duplicated=0)      # records lost

Counts are per pytest process (module state); nothing is written to disk.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Load:
    name: str
    webhooks: int
    seconds: float
    refused: int
    detail: str


@dataclass
class _Records:
    checked: int = 0
    lost: int = 0
    duplicated: int = 0


@dataclass
class _Summary:
    loads: list[_Load] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)
    records: dict[str, _Records] = field(default_factory=dict)
    printed: bool = False


_STATE = _Summary()


def load(name: str, *, webhooks: int, seconds: float, refused: int = 0, detail: str = "") -> None:
    """A load that was driven to the end: `webhooks` accepted in `seconds`; `refused` answers (5xx,
    connection errors) the driver retried along the way; `detail` e.g. latencies."""
    _STATE.loads.append(_Load(name, webhooks, seconds, refused, detail))


def fault(name: str, count: int = 1) -> None:
    """A fault injected while the system worked, after which every check still held."""
    _STATE.faults[name] += count


def bad_inputs(kind: str, count: int = 1) -> None:
    """Bad inputs sent (forged, malformed, oversized, unauthorised…) and refused without side effect."""
    _STATE.bad[kind] += count


def records(name: str, *, checked: int, lost: int, duplicated: int = 0) -> None:
    """Records whose effect was verified: `lost` had none, `duplicated` had more than one."""
    entry = _STATE.records.setdefault(name, _Records())
    entry.checked += checked
    entry.lost += lost
    entry.duplicated += duplicated


def lines() -> list[str]:
    """The summary as text lines (empty when nothing was reported)."""
    s = _STATE
    if not (s.loads or s.faults or s.bad or s.records):
        return []
    out = []
    for item in s.loads:
        rate = item.webhooks / item.seconds if item.seconds > 0 else 0.0
        out.append(f"load held: {item.name}: {item.webhooks:,} webhooks accepted in {item.seconds:.0f} s "
                   f"({rate:.0f}/s), {item.refused:,} refused answers retried"
                   + (f"; {item.detail}" if item.detail else ""))
    if not s.loads:
        out.append("load held: (no load run)")
    total_faults = sum(s.faults.values())
    detail = ", ".join(f"{name} ×{n}" for name, n in sorted(s.faults.items()))
    out.append(f"faults survived: {total_faults}" + (f" ({detail})" if detail else ""))
    total_bad = sum(s.bad.values())
    detail = ", ".join(f"{kind} ×{n}" for kind, n in sorted(s.bad.items()))
    out.append(f"bad inputs tried: {total_bad:,}" + (f" ({detail})" if detail else ""))
    lost = sum(r.lost for r in s.records.values())
    duplicated = sum(r.duplicated for r in s.records.values())
    checked = sum(r.checked for r in s.records.values())
    detail = ", ".join(f"{name}: {r.lost} of {r.checked:,}" + (f", {r.duplicated} duplicated" if r.duplicated else "")
                       for name, r in sorted(s.records.items()))
    out.append(f"records lost: {lost} of {checked:,} checked, {duplicated} duplicated"
               + (f" ({detail})" if detail else ""))
    return out


def write(terminalreporter: Any) -> None:
    """Print the summary section once per session (several conftests may call this)."""
    if _STATE.printed:
        return
    text = lines()
    if not text:
        return
    _STATE.printed = True
    terminalreporter.write_sep("=", "reliability and security summary")
    for line in text:
        terminalreporter.write_line(line)


def reset() -> None:
    """Forget everything (for the summary's own tests)."""
    global _STATE
    _STATE = _Summary()
