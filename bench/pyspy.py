"""py-spy around a timed phase of a benchmark: the service profiled as it really runs, from outside.

    with profiled(Path("bench/reports/scoring.txt")) as report:   # .svg flame graph, .json speedscope,
        ...timed phase...                                         # anything else: collapsed stacks + top table
    print(report.summary)

py-spy (PyPI, in the [dev] extra) samples this process at `rate` Hz without touching its code, so the
profile shows the event loop, asyncpg, aiokafka and the handlers in their real proportions (cProfile
inflates many small calls). Idle samples (the loop waiting in epoll) are left out: the shares are of
the busy time. SQLAlchemy runs statements in greenlets, whose samples lack the frames above the
greenlet: those show up as stacks starting at `Session.execute` & co. Attaching needs ptrace rights
(root, or kernel.yama.ptrace_scope = 0); when py-spy is missing or cannot attach, the phase runs
unprofiled and `report.summary` says why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Report:
    path: Path
    summary: str = ""
    top: list[tuple[str, float, float]] = field(default_factory=list)  # (frame, inclusive %, self %)
    samples: int = 0


def _binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _frame(raw: str) -> str:
    """`fn (path/to/module.py:123)` → `fn (module.py)`: one row per function, not per line."""
    name, _, where = raw.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{name} ({short})"


def summarise(collapsed: Path, *, top: int = 25) -> tuple[list[tuple[str, float, float]], int]:
    """Inclusive and self shares per function from py-spy's collapsed stacks (`a;b;c count` lines)."""
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += n
        self_[frames[-1]] += n
    rows = sorted(inclusive, key=lambda f: (-inclusive[f], f))
    # The frames every sample passes through (the script, the event loop) say nothing.
    dull = ("(asyncio/base_events.py)", "(asyncio/runners.py)", "(asyncio/events.py)")
    interesting = [f for f in rows if not f.startswith(("<module> (", "main (")) and not f.endswith(dull)]
    return [(f, 100 * inclusive[f] / total, 100 * self_[f] / total) for f in interesting[:top]], total


@contextmanager
def profiled(path: Path | None, *, rate: int = 250, native: bool = False, pid: int | None = None
             ) -> Iterator[Report]:
    """Sample `pid` (default: this process) while the block runs."""
    report = Report(path=path or Path())
    if path is None:
        yield report
        return
    binary = _binary()
    if binary is None:
        report.summary = "py-spy not installed (pip install -e '.[dev]'): not profiled"
        yield report
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(path.suffix, "raw")
    out = path if fmt != "raw" else path.with_suffix(".collapsed")
    command = [binary, "record", "--pid", str(pid or os.getpid()), "--rate", str(rate), "--format", fmt,
               "--output", str(out), "--nonblocking"]
    if native:
        command.append("--native")
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # attached before the phase starts
    try:
        yield report
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if not out.exists():
            report.summary = f"py-spy wrote nothing ({err.decode(errors='replace').strip()[-300:]})"
        elif fmt == "raw":
            report.top, report.samples = summarise(out)
            lines = [f"py-spy: {report.samples} busy samples at {rate} Hz (idle left out); collapsed stacks in {out}",
                     f"{'incl %':>7} {'self %':>7}  function"]
            lines += [f"{inc:7.1f} {own:7.1f}  {name}" for name, inc, own in report.top]
            report.summary = "\n".join(lines)
            path.write_text(report.summary + "\n")
        else:
            report.summary = f"py-spy {fmt} written to {out}"
