"""Ingest benchmark: signed chat webhooks through the gateway's real endpoint vs a bare FastAPI endpoint.

    .venv/bin/python bench/ingest.py [--requests N] [--rounds R] [--concurrency C] [--database sqlite|postgres]
                                     [--label TEXT]

Both servers run the same way: `uvicorn` (uvloop, httptools) in a child process of its own on a free
loopback port, one worker; the load generator is this process (a small keep-alive HTTP/1.1 client on
asyncio streams, C connections, every request built and signed before the clock starts).

real     the gateway app as `qunzhu serve gateway` builds it (migrated database, outbox relay to the
         in-process bus, consumers), with one generic connector: each request is a Standard Webhooks
         delivery (`webhook-id`, `webhook-timestamp`, `v1,<HMAC-SHA256>`) carrying a chat message;
         verify → normalise → dedupe row → outbox row → commit → 200 (the chat webhook's raw ASGI route,
         gateway.webhooks.asgi, ahead of FastAPI's middleware and routing).
bare     FastAPI with one `POST /webhooks/chat/{connector_id}` that reads the body and answers 200 JSON.

rate = N / (first request sent → last response read); latency per request (send → response read) under
that load, p50 / p99. Both servers run side by side (the idle one waits: the real one's relay polls its
outbox); `--rounds R` (default 5) timed loads alternate between them and each path's rate is the median of
its R rounds, so noise that drifts during the run (a shared machine) hits both alike. ratio = real_rate /
bare_rate, limit 0.5. Afterwards the outbox must hold exactly one event per accepted delivery (R × N plus
the warm-up and the flame graph's load; checked). Exits 0 whatever the ratio; appends its figures to bench/results.json.

`--flamegraph FILE.svg`: py-spy (in [dev]) samples the real server process during one more load after the
timed rounds (not counted: the sampler slows what it samples) and writes a flame graph (`make bench` writes
bench/reports/ingest-gateway.svg); needs ptrace rights, else it says why.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pyspy import profiled  # noqa: E402

LIMIT = 0.5
RESULTS = Path(__file__).resolve().parent / "results.json"
ADMIN_KEY = "bench-admin-" + uuid.uuid4().hex
COMMUNITY = "bench-community"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the servers (child processes) -------------------------------------------------------------------


def bare_app() -> Any:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/chat/{connector_id}")
    async def webhook(connector_id: str, request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "accepted", "events": 1})

    return app


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "bare":
        app = bare_app()
    else:
        from gateway.app import create_app
        from gateway.settings import GatewaySettings
        from qunzhu_common.process import tune_gc

        app = create_app(GatewaySettings())  # everything from GATEWAY_* set by the parent
        tune_gc()  # as `qunzhu serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


class Server:
    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind, self.port = kind, free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port)],
            env={**os.environ, **env}, cwd=ROOT, stdin=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.kind} server exited with {self.proc.returncode}")
            probe = self.url + ("/readyz" if self.kind == "real" else "/healthz")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(probe, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"{self.kind} server not ready after {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# -- the load generator ------------------------------------------------------------------------------


def build_requests(n: int, *, port: int, connector_id: str, secret: str, tag: str) -> list[bytes]:
    """Whole HTTP/1.1 requests, each a distinct signed delivery of a realistic chat message."""
    from gateway.webhooks.verify import sign_standard

    out = []
    stamp = int(time.time())
    for i in range(n):
        body = json.dumps({
            "type": "message", "group_id": "bench-group", "message_id": f"{tag}-{i}", "sender_id": f"wxid_{i % 500}",
            "sender_name": "群友", "text": "今天的分享很有收获，笔记在这里 https://example.com/notes 大家看看",
            "timestamp": datetime.now(UTC).isoformat(),
        }, ensure_ascii=False).encode()
        msg_id = f"msg_{tag}_{i}"
        head = (
            f"POST /webhooks/chat/{connector_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"webhook-id: {msg_id}\r\nwebhook-timestamp: {stamp}\r\n"
            f"webhook-signature: {sign_standard(secret, msg_id, stamp, body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next((int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
    if length:
        await reader.readexactly(length)
    return status


async def load(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    """Send every request over `concurrency` keep-alive connections; (seconds, latencies, statuses)."""
    queue = iter(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] * 1000


# -- the run -----------------------------------------------------------------------------------------


def register_connector(url: str) -> tuple[str, str]:
    import httpx

    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    response = httpx.post(f"{url}/api/v1/communities/{COMMUNITY}/connectors", headers={"X-API-Key": ADMIN_KEY},
                          json={"community_id": COMMUNITY, "platform": "generic", "identity_platform": "wechat",
                                "groups": ["bench-group"], "secrets": {"signing_secrets": [secret]}}, timeout=10)
    response.raise_for_status()
    return response.json()["id"], secret


async def outbox_count(database_url: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one())
    finally:
        await engine.dispose()


def measure(env: dict[str, str], args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both servers up side by side, then `args.rounds` timed loads on each, alternating (bare, real, bare…):
    noise that drifts during the run (a shared machine) hits both paths alike. Rates are the rounds' medians,
    latencies those of every round."""
    servers = {kind: Server(kind, env) for kind in ("bare", "real")}
    results: dict[str, dict[str, Any]] = {kind: {"rates": [], "latencies": [], "statuses": {}, "cpu": 0.0}
                                          for kind in servers}
    try:
        plans = {}
        for kind, server in servers.items():
            server.wait_ready()
            connector_id, secret = (register_connector(server.url) if kind == "real"
                                    else ("c-bare", "whsec_" + "A" * 32))
            asyncio.run(load(server.port, build_requests(
                args.warmup, port=server.port, connector_id=connector_id, secret=secret, tag="w"), args.concurrency))
            plans[kind] = (connector_id, secret)
        for round_ in range(args.rounds):
            for kind, server in servers.items():
                connector_id, secret = plans[kind]
                timed = build_requests(args.requests, port=server.port, connector_id=connector_id, secret=secret,
                                       tag=f"t{round_}")
                cpu0 = time.process_time()
                seconds, latencies, statuses = asyncio.run(load(server.port, timed, args.concurrency))
                results[kind]["cpu"] += time.process_time() - cpu0
                rate = args.requests / seconds
                log(f"{kind} round {round_ + 1}: {args.requests} requests in {seconds:.3f}s = {rate:.0f}/s, "
                    f"statuses {statuses}")
                results[kind]["rates"].append(rate)
                results[kind]["latencies"] += latencies
                for status, count in statuses.items():
                    results[kind]["statuses"][status] = results[kind]["statuses"].get(status, 0) + count
        if args.flamegraph:  # one more load, not timed: the sampler slows what it samples
            real = servers["real"]
            connector_id, secret = plans["real"]
            with profiled(args.flamegraph, pid=real.proc.pid) as profile:  # py-spy from outside: as it runs
                asyncio.run(load(real.port, build_requests(args.requests, port=real.port, connector_id=connector_id,
                                                           secret=secret, tag="flame"), args.concurrency))
            log(profile.summary)
    finally:
        for server in servers.values():
            server.stop()

    def figures(kind: str) -> dict[str, Any]:
        r = results[kind]
        return {"requests_per_s": round(statistics.median(r["rates"]), 1),
                "rounds_requests_per_s": [round(x, 1) for x in r["rates"]],
                "p50_ms": round(percentile(r["latencies"], 50), 2), "p99_ms": round(percentile(r["latencies"], 99), 2),
                "statuses": r["statuses"],
                "generator_cpu_us_per_request": round(r["cpu"] / (args.requests * args.rounds) * 1e6, 1)}

    return figures("bare"), figures("real")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="timed requests per path (default 5000)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="timed loads per path, alternating (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="the gateway's database (sqlite = embedded mode; postgres = the local cluster)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.json")
    parser.add_argument("--label", default="", help="recorded with the figures (which code ran, what shared the CPUs)")
    parser.add_argument("--flamegraph", type=Path, metavar="SVG", help="py-spy flame graph of the real server's "
                        "timed run (e.g. bench/reports/ingest-gateway.svg)")
    parser.add_argument("--serve", choices=("real", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="qunzhu-bench-ingest-"))
    postgres = None
    if args.database == "postgres":
        from tests.integration.stack import Postgres

        class BenchPostgres(Postgres):
            def databases(self) -> list[str]:
                return [self.database("gateway")]

        postgres = BenchPostgres(prefix=f"qzingest_{uuid.uuid4().hex[:6]}")
        postgres.start()
        database_url = postgres.url("gateway")
    else:
        database_url = f"sqlite+aiosqlite:///{tmp / 'gateway.sqlite3'}"
    env = {"GATEWAY_DATA_DIR": str(tmp), "GATEWAY_DATABASE_URL": database_url, "GATEWAY_ADMIN_API_KEY": ADMIN_KEY,
           "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_BUS_PATH": str(tmp / "bus.sqlite3"),
           # The pipeline is measured, not the per-connector delivery limit.
           "GATEWAY_WEBHOOK_RATE_PER_S": "1000000", "GATEWAY_WEBHOOK_BURST": "1000000"}
    try:
        bare, real = measure(env, args)
        stored = asyncio.run(outbox_count(database_url))
    finally:
        if postgres is not None:
            with contextlib.suppress(Exception):
                postgres.drop()
    expected = args.requests * (args.rounds + (1 if args.flamegraph else 0)) + args.warmup
    ratio = real["requests_per_s"] / bare["requests_per_s"]
    verdict = "PASS" if ratio >= LIMIT else "BELOW"
    print(f"ingest benchmark: {args.requests} signed chat webhooks, {args.concurrency} connections, "
          f"gateway database {args.database}")
    print(f"{'path':<48}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'bare FastAPI endpoint':<48}{bare['requests_per_s']:>9.0f}{bare['p50_ms']:>9.2f}{bare['p99_ms']:>9.2f}")
    print(f"{'real: verify → normalise → dedupe → outbox':<48}{real['requests_per_s']:>9.0f}{real['p50_ms']:>9.2f}"
          f"{real['p99_ms']:>9.2f}")
    print(f"  outbox holds {stored} events for {expected} accepted deliveries "
          f"({'ok' if stored == expected else 'MISMATCH'})")
    print(f"ratio = real_rate / bare_rate = {ratio:.3f}   limit {LIMIT}   {verdict}")
    entry = {
        "benchmark": "ingest",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "server": "uvicorn (uvloop, httptools), 1 worker, child process", "database": args.database},
        "parameters": {"requests": args.requests, "warmup": args.warmup, "concurrency": args.concurrency,
                       "rounds": args.rounds},
        "bare": bare, "real": real, "outbox_events": stored, "outbox_expected": expected,
        "ratio": round(ratio, 4), "limit": LIMIT, "verdict": verdict, "label": args.label,
        "load_average": [round(x, 2) for x in os.getloadavg()],  # other work on the machine (2 cores shared)
    }
    if not args.no_record:
        results: list[Any] = []
        if RESULTS.exists() and RESULTS.read_text().strip():
            results = json.loads(RESULTS.read_text())
            if not isinstance(results, list):
                raise SystemExit(f"{RESULTS} is not a JSON list; not touching it")
        results.append(entry)
        staging = RESULTS.with_suffix(".json.tmp")
        staging.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        staging.replace(RESULTS)
        print(f"appended to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
