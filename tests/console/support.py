"""What the console's browser tests share: the system Chromium and its flags, embedded mode started and
stopped as `make demo` does, and what the fixture filled it with."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from qunzhu.simulator.demo import _stop
from tests.integration.stack import ROOT
from tests.servers import forget_process, record_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
@dataclass
class Filled:
    url: str
    data_dir: Path
    community_id: str
    owner_id: str
    owner_token: str
    chats: list[str]
    screenshots: Path

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.url + path, headers={"Authorization": f"Bearer {self.owner_token}"},
                                 timeout=30, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None


def chromium() -> str:
    """The system Chromium (a hard requirement: deploy/local/prereqs.sh installs it), never a download."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `bash deploy/local/prereqs.sh` (or `sudo apt-get install chromium`)",
                    pytrace=False)
    return CHROMIUM


def start(data_dir: Path, target_env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "embedded.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qunzhu", "run", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, **target_env})
    record_process(proc, "qunzhu run (console)")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, (data_dir / "embedded.log").read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/services", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise AssertionError("embedded mode not ready:\n" + (data_dir / "embedded.log").read_text()[-3000:])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """As `make demo` stops its embedded mode: SIGTERM (a clean shutdown), SIGKILL after 30 s."""
    _stop(proc)
    forget_process(proc.pid)
