"""`python -m qunzhu demo`: start embedded mode (or use a running gateway), drive a community, print the report.

Embedded mode runs as a child process (`python -m qunzhu run`) on a free loopback port with a temporary
data directory, started with an operator key, a Stripe webhook secret and plain-http bot bridges allowed
— the settings an operator would give it — and the engagement jobs left to be run on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from qunzhu.simulator.drive import DriveError, Driver, Target, bot_bridge
from qunzhu.simulator.generate import Community, SimConfig, generate
from qunzhu.simulator.report import Report, collect, render


@dataclass
class EmbeddedProcess:
    target: Target
    proc: subprocess.Popen[bytes]
    data_dir: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.data_dir / "embedded.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded(data_dir: Path | None = None, *, ready_timeout_s: float = 90) -> AsyncIterator[EmbeddedProcess]:
    """`python -m qunzhu run` in a child process, on a free port, with a temporary data dir (removed after)."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qunzhu-demo-")))
        port = _free_port()
        target = Target(base_url=f"http://127.0.0.1:{port}", api_key=secrets.token_urlsafe(24),
                        stripe_secret="whsec_" + secrets.token_urlsafe(24))
        env = {
            **os.environ,
            "GATEWAY_ADMIN_API_KEY": target.api_key,
            "GATEWAY_STRIPE_WEBHOOK_SECRETS": f'["{target.stripe_secret}"]',
            "GATEWAY_BRIDGE_ALLOW_HTTP": "true",  # the demo's bot bridge listens on http://127.0.0.1
            # One client drives a whole community: the per-client API limit is for the public internet.
            "GATEWAY_RATE_LIMIT_PER_S": "2000", "GATEWAY_RATE_LIMIT_BURST": "2000",
            "ENGAGEMENT_JOBS_INTERVAL_S": "0",  # the demo runs the jobs itself, as of the simulated end
        }
        proc = _spawn(port, data_dir, env)
        running = EmbeddedProcess(target=target, proc=proc, data_dir=data_dir)
        try:
            await wait_ready(target.base_url, ready_timeout_s, process=running)
            yield running
        finally:
            _stop(proc)


def _spawn(port: int, data_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(data_dir / "embedded.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "qunzhu", "run", "--port", str(port), "--data-dir", str(data_dir)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(base_url: str, timeout_s: float, *, process: EmbeddedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if process is not None and process.proc.poll() is not None:
                raise DriveError(f"embedded mode exited with {process.proc.returncode}:\n{process.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(base_url + "/services")).status_code == 200:
                    return
            await asyncio.sleep(0.25)
    tail = process.log_tail() if process is not None else ""
    raise DriveError(f"the gateway at {base_url} was not ready after {timeout_s:.0f} s\n{tail}")


async def wait_money(driver: Driver, community: Community, *, timeout_s: float = 120) -> None:
    """Until membership has applied every payment and refund driven (its ledger, through the gateway)."""
    captured = sum(p.amount_fen for p in community.payments)
    refunded = sum(p.amount_fen for p in community.refunds)
    path = f"/api/v1/membership/communities/{driver.out.community_id}/ledger"
    deadline = time.monotonic() + timeout_s
    while True:
        summary = (await driver.expect("GET", path, params={"limit": 1}))["summary"]
        cny = next((s for s in summary if s["currency"] == "CNY"), {})
        if (cny.get("captured_fen"), cny.get("refunded_fen")) == (captured, refunded):
            return
        if time.monotonic() > deadline:
            raise DriveError(f"membership's ledger shows {cny}, expected captured {captured} refunded {refunded}")
        await asyncio.sleep(0.3)


async def simulate(target: Target, config: SimConfig, *, console: Any = None) -> tuple[Community, Report]:
    """Generate, drive and collect the report against a running gateway; a progress bar on `console`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if not config.tag:  # chat and payment ids must not collide with an earlier run on the same stack
        config = replace(config, tag=f"{config.seed}-{secrets.token_hex(3)}")
    community = generate(config)
    columns = (SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with bot_bridge() as bridge, Progress(*columns, console=console, transient=False,
                                          disable=console is None) as bar:
        tasks = {
            "setup": bar.add_task("community, connector, owner login", total=None),
            "payments": bar.add_task("payments and refunds (Stripe)", total=len(community.payments)
                                     + len(community.refunds)),
            "chat": bar.add_task("chat events (signed webhooks)", total=len(community.items)),
            "scored": bar.add_task("scored by engagement", total=len(community.items)),
            "jobs": bar.add_task("grades, key people, lurkers, health", total=None),
        }
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            driver = Driver(client, target, community, bridge,
                            progress=lambda phase, n: bar.advance(tasks[phase], n))
            await driver.setup()
            bar.update(tasks["setup"], total=1, completed=1)
            baseline = await driver.scored()
            await driver.pay()
            await driver.chat()
            await driver.wait_scored(baseline, len(community.items))
            await driver.refund()
            await wait_money(driver, community)
            started = time.monotonic()
            await driver.grade()
            as_of = community.end + timedelta(hours=1)
            await driver.run_jobs(as_of)
            bar.update(tasks["jobs"], total=1, completed=1)
            driver.out.seconds["grades_and_jobs"] = time.monotonic() - started
            report = await collect(driver, community, as_of=as_of)
    return community, report


async def run_demo(config: SimConfig, *, gateway: str | None = None, api_key: str = "", stripe_secret: str = "",
                   console: Any = None) -> Report:
    """The whole demo: embedded mode by default, or the gateway at `gateway`; prints to `console`."""
    started = time.monotonic()
    if gateway:
        if not (api_key and stripe_secret):
            raise DriveError("--gateway needs --api-key (GATEWAY_ADMIN_API_KEY) and --stripe-secret "
                             "(one of GATEWAY_STRIPE_WEBHOOK_SECRETS) of that gateway")
        target = Target(base_url=gateway.rstrip("/"), api_key=api_key, stripe_secret=stripe_secret)
        await wait_ready(target.base_url, 30)
        community, report = await simulate(target, config, console=console)
    else:
        if console is not None:
            console.print("[dim]Starting embedded mode (python -m qunzhu run) on a free port …[/]")
        async with embedded() as process:
            if console is not None:
                console.print(f"[dim]Gateway ready at {process.target.base_url} "
                              f"({time.monotonic() - started:.1f} s)[/]")
            community, report = await simulate(process.target, config, console=console)
    if console is not None:
        cfg = community.config
        console.rule(f"Qunzhu demo — {cfg.groups} groups × {cfg.members_per_group} members, {cfg.days} simulated "
                     f"days, seed {cfg.seed}")
        render(report, console)
        console.print(f"[dim]Done in {time.monotonic() - started:.1f} s "
                      f"({', '.join(f'{k} {v:.1f} s' for k, v in report.driven.seconds.items())}).[/]")
    return report
