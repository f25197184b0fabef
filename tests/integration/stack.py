"""Test tooling for the distributed stack: a dedicated Kafka broker, fresh PostgreSQL databases and
each service as its own OS process, all on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import httpx

from qunzhu_common.testing import GatewayActorAuth
from tests.servers import forget_process, record_directory, record_process

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
SERVICES = ("membership", "content", "engagement", "gateway")
# The platform operator's API key of the gateway under test (it authenticates every write).
GATEWAY_OPERATOR_KEY = "integration-platform-operator-key"
# The key of the gateway's actor assertions, shared by every service of a stack. Tests that call a service's
# port directly name their caller as the gateway would: `httpx.AsyncClient(auth=ACTOR_AUTH)` signs a
# request's X-Actor-Id with it.
INTERNAL_KEY = "integration-internal-key-" + uuid.uuid4().hex
ACTOR_AUTH = GatewayActorAuth(lambda: INTERNAL_KEY.encode())
OPERATOR_CALLER = {"X-Actor-Id": "platform-operator"}


def operator_client(**kwargs: object) -> httpx.AsyncClient:
    """A client calling the services' ports directly as the platform operator (owner everywhere), signed as
    the gateway would: for tests about scoring, flows and metrics, not about who may call what."""
    return httpx.AsyncClient(auth=ACTOR_AUTH, headers=OPERATOR_CALLER, **kwargs)  # type: ignore[arg-type]
# The Stripe webhook signing secret the gateway under test verifies payment webhooks with.
STRIPE_WEBHOOK_SECRET = "whsec_integration_stripe"
# Engagement's periodic jobs (lurkers, elimination, key people, group health, the members-by-level gauge).
ENGAGEMENT_JOBS_INTERVAL_S = "10"


class InfraError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_script(script: str, *args: str, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        ["bash", str(LOCAL / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise InfraError(f"{script} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


@dataclass
class Kafka:
    data_dir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        return {
            "QUNZHU_DATA_DIR": str(self.data_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "QUNZHU_KAFKA_BOOTSTRAP": self.bootstrap,
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        record_directory("kafka", self.data_dir)
        run_script("kafka.sh", "start", env=self.env)

    def stop(self) -> None:
        run_script("kafka.sh", "stop", env=self.env)

    def restart(self, down_s: float = 0) -> None:
        """Stop the broker (TERM, as an operator's restart would), stay down `down_s`, start it again."""
        self.stop()
        time.sleep(down_s)
        self.start()


@dataclass
class Postgres:
    prefix: str = field(default_factory=lambda: f"qzit_{uuid.uuid4().hex[:8]}")

    @property
    def env(self) -> dict[str, str]:
        """What postgres.sh needs to reach this cluster (the shared one: the environment's defaults)."""
        return {}

    def start(self) -> None:
        run_script("postgres.sh", "start", env={})
        self.port = int(os.environ.get("QUNZHU_PG_PORT", "5433"))
        self.user = os.environ.get("QUNZHU_PG_USER", "qunzhu")
        self.password = os.environ.get("QUNZHU_PG_PASSWORD", "qunzhu")
        run_script("postgres.sh", "createdb", *self.databases(), env={})

    def databases(self) -> list[str]:
        return [self.database(name) for name in SERVICES]

    def database(self, service: str) -> str:
        return f"{self.prefix}_{service}"

    def url(self, service: str, *, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database(service)}"

    def drop(self) -> None:
        run_script("postgres.sh", "dropdb", *self.databases(), env={})


@dataclass
class PrivatePostgres(Postgres):
    """A PostgreSQL cluster of a test run's own (own directory, own port), so a fault suite can stop and
    restart it without touching the shared cluster that other runs use."""

    directory: Path = field(default_factory=lambda: Path(f"/var/tmp/qunzhu-pg-{uuid.uuid4().hex[:8]}"))
    private_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        return {"QUNZHU_PG_DIR": str(self.directory), "QUNZHU_PG_PORT": str(self.private_port)}

    def start(self) -> None:
        record_directory("pg", self.directory)
        run_script("postgres.sh", "start", env=self.env)
        self.port = self.private_port
        self.user = os.environ.get("QUNZHU_PG_USER", "qunzhu")
        self.password = os.environ.get("QUNZHU_PG_PASSWORD", "qunzhu")
        run_script("postgres.sh", "createdb", *self.databases(), env=self.env)

    def stop_server(self) -> None:
        run_script("postgres.sh", "stop", env=self.env)

    def restart(self, down_s: float = 0) -> None:
        """A fast shutdown (open connections are cut), `down_s` down, then the same cluster again."""
        self.stop_server()
        time.sleep(down_s)
        run_script("postgres.sh", "start", env=self.env)

    def drop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.directory, ignore_errors=True)


class ServiceProcess:
    """One service as `python -m qunzhu serve <name>`, killable and restartable."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.args: list[str] = []  # more `qunzhu serve` options (e.g. --reuse-port for replicas on one port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qunzhu", "serve", self.name, "--port", str(self.port), "--log-level", "warning",
             *self.args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
        log.close()
        record_process(self.proc, f"qunzhu serve {self.name}")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise InfraError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise InfraError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        if self.proc is not None:
            forget_process(self.proc.pid)
        self.proc = None

    def restart(self) -> None:
        self.kill(signal.SIGTERM)
        self.start()
        self.wait_ready()

    def crash_and_restart(self, down_s: float = 0) -> None:
        """SIGKILL (no shutdown code runs: open transactions and unsent work die), then start again."""
        self.kill(signal.SIGKILL)
        time.sleep(down_s)
        self.start()
        self.wait_ready()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Stack:
    # Stacks whose processes are up: a failing test shows their logs (tests/conftest.py).
    running: ClassVar[list[Stack]] = []

    def __init__(self, kafka: Kafka, postgres: Postgres, log_dir: Path) -> None:
        self.kafka = kafka
        self.postgres = postgres
        self.services: dict[str, ServiceProcess] = {}
        for name in SERVICES:
            prefix = name.upper()
            env = {
                f"{prefix}_DATABASE_URL": postgres.url(name),
                f"{prefix}_BUS": "kafka",
                f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                f"{prefix}_DATA_DIR": str(log_dir),
                f"{prefix}_MAX_DELIVERY_ATTEMPTS": "3",
                f"{prefix}_INTERNAL_KEY": INTERNAL_KEY,
            }
            self.services[name] = ServiceProcess(name, env, log_dir)
        gateway = self.services["gateway"]
        gateway.env["GATEWAY_ADMIN_API_KEY"] = GATEWAY_OPERATOR_KEY
        gateway.env["GATEWAY_STRIPE_WEBHOOK_SECRETS"] = f'["{STRIPE_WEBHOOK_SECRET}"]'
        gateway.env["GATEWAY_BRIDGE_ALLOW_HTTP"] = "true"  # the tests' bot bridges listen on plain 127.0.0.1
        # Real platforms' limits (1 action/s per group) would drain the hundreds of actions one test leaves
        # for groups without a connector for minutes and slow every test's own actions. No integration test
        # measures these limits.
        gateway.env.update({"GATEWAY_ACTION_GROUP_RATE_PER_S": "100", "GATEWAY_ACTION_GROUP_BURST": "100",
                            "GATEWAY_ACTION_PLATFORM_RATE_PER_S": "500", "GATEWAY_ACTION_PLATFORM_BURST": "500"})
        self.services["engagement"].env["ENGAGEMENT_JOBS_INTERVAL_S"] = ENGAGEMENT_JOBS_INTERVAL_S
        for name in ("membership", "content", "engagement"):
            gateway.env[f"GATEWAY_{name.upper()}_URL"] = self.services[name].url

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def start(self) -> None:
        Stack.running.append(self)
        for svc in self.services.values():
            svc.start()
        for svc in self.services.values():
            svc.wait_ready()

    def stop(self) -> None:
        if self in Stack.running:
            Stack.running.remove(self)
        for svc in self.services.values():
            svc.kill(signal.SIGTERM)
