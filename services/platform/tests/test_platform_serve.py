"""`qunzhu serve --reuse-port`: replicas of a service share one host port (SO_REUSEPORT), as bench/e2e.py's
scaled layout runs the gateway."""

from __future__ import annotations

import socket

import pytest
import uvicorn

from qunzhu.cli import main


@pytest.fixture
def served(monkeypatch, tmp_path):
    """uvicorn does not run: each `serve` records the sockets it would have served."""
    monkeypatch.setenv("MEMBERSHIP_DATA_DIR", str(tmp_path))
    calls: list[list[socket.socket]] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append(sockets))
    yield calls
    for sockets in calls:
        for sock in sockets or []:
            sock.close()


def test_two_processes_bind_the_same_port(served):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for _ in range(2):  # a second bind of the port succeeds only because both set SO_REUSEPORT
        main(["serve", "membership", "--port", str(port), "--reuse-port"])
    assert [s[0].getsockname() for s in served] == [("127.0.0.1", port)] * 2
    assert all(s[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in served)
