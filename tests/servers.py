"""What a test run starts, recorded in the run's directory so that `make test` stops it even when the run is
cut short (interrupted, killed, a fixture that never reached its teardown): the Makefile exports
QUNZHU_TEST_RUN_DIR and its exit trap runs `deploy/local/test-servers.sh stop` on it. The fixtures still stop
what they start; this is the safety net. Without QUNZHU_TEST_RUN_DIR (a bare `pytest`) nothing is recorded.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RUN_DIR_ENV = "QUNZHU_TEST_RUN_DIR"


def _run_dir() -> Path | None:
    value = os.environ.get(RUN_DIR_ENV)
    if not value or not Path(value).is_dir():
        return None
    return Path(value)


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: with the pid, it names one process (a reused pid has another)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(") ", 1)[1].split()[19]


def record_process(proc: subprocess.Popen[bytes], name: str) -> None:
    run = _run_dir()
    started = _start_time(proc.pid)
    if run is not None and started is not None:
        (run / f"pid-{proc.pid}").write_text(f"{started} {name}\n")


def forget_process(pid: int) -> None:
    run = _run_dir()
    if run is not None:
        (run / f"pid-{pid}").unlink(missing_ok=True)


def record_directory(kind: str, directory: Path) -> None:
    """kind "kafka": a broker's QUNZHU_DATA_DIR; kind "pg": a private cluster's QUNZHU_PG_DIR."""
    run = _run_dir()
    if run is not None:
        name = str(directory).strip("/").replace("/", "_")
        (run / f"{kind}-{name}").write_text(f"{directory}\n")
