"""Embedded mode as a user runs it: `python -m qunzhu run`, killed with SIGKILL, started again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.stack import ROOT, free_port
from tests.servers import record_process

OPERATOR_KEY = "embedded-test-operator-key"  # the gateway authenticates every write


class EmbeddedProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "embedded.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "qunzhu", "run", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                env={**os.environ, "GATEWAY_ADMIN_API_KEY": OPERATOR_KEY},
            )
        record_process(self.proc, "qunzhu run")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/services", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("embedded platform not ready:\n" + self.log.read_text())

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def content_has(content_db: str, community_id: str) -> bool:
    """Content's own copy, read from its SQLite file (the gateway exposes no content route yet)."""
    db = sqlite3.connect(content_db)
    try:
        return db.execute("SELECT 1 FROM community_copy WHERE id = ?", (community_id,)).fetchone() is not None
    finally:
        db.close()


def test_sigkill_loses_no_event_and_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    platform = EmbeddedProcess(tmp_path / "data")
    platform.start()
    with httpx.Client(timeout=10) as client:
        ids = []
        for i in range(40):
            response = client.post(
                platform.url + "/api/v1/communities",
                json={"name": f"群 {i}", "positioning": "每天一个增长实验", "owner_id": "wecom:u1"},
                headers={"X-API-Key": OPERATOR_KEY},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    # Killed right after the last 201: some events are still in outboxes or not yet consumed.
    platform.stop(signal.SIGKILL)

    platform.start()
    content_db = str(platform.data_dir / "content.sqlite3")
    deadline = time.monotonic() + 60
    while not all(content_has(content_db, i) for i in ids):
        assert time.monotonic() < deadline, "events lost across the kill"
        time.sleep(0.2)
    with httpx.Client(timeout=10) as client:
        listed = client.get(platform.url + "/api/v1/communities", params={"limit": 200}).json()
    assert listed["count"] == 40
    # Ctrl-C (SIGINT) shuts down cleanly with exit code 0.
    assert platform.stop(signal.SIGINT) == 0
    assert "Qunzhu stopped." in platform.log.read_text()
