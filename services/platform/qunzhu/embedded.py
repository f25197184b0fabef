"""Embedded mode: the four services in one process, one durable in-process bus, SQLite files.

The gateway listens on HTTP and reaches the other services through httpx's ASGI transport; the
services' lifespans (migrations, relays, consumers) are run here because ASGI transports don't.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from qunzhu.services import entry
from qunzhu_common.bus.local import LocalBus
from qunzhu_common.logging import configure_logging

BACKEND_SERVICES = ("membership", "content", "engagement")


@asynccontextmanager
async def embedded_platform(data_dir: str | Path, *, partitions: int = 3) -> AsyncIterator[FastAPI]:
    """Start the services and yield the gateway app (its own lifespan is left to the caller)."""
    data_dir = Path(data_dir)
    bus = LocalBus(data_dir / "bus.sqlite3", partitions=partitions)
    await bus.start()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(bus.stop)
        apps: dict[str, FastAPI] = {}
        for name in BACKEND_SERVICES:
            svc = entry(name)
            app = svc.create_app(svc.settings(data_dir=data_dir, topic_partitions=partitions), bus=bus)
            await stack.enter_async_context(app.router.lifespan_context(app))
            apps[name] = app
        gateway = entry("gateway")
        transports = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
        yield gateway.create_app(
            gateway.settings(data_dir=data_dir, topic_partitions=partitions), bus=bus, transports=transports
        )


def _token_hint(data_dir: str) -> str:
    """How to get a member token here: minted from the local key file, unless the keys come from the environment."""
    settings = entry("gateway").settings(data_dir=Path(data_dir))
    if settings.secret_key.get_secret_value().strip() or settings.jwt_secret.get_secret_value().strip():
        return "keys from the environment: POST /api/v1/auth/codes then /api/v1/auth/token (or /api/v1/auth/telegram)"
    if Path(data_dir) == Path("data"):
        return "make token PERSON=telegram:42 [COMMUNITY=<id>]  (a member token for development)"
    return f"python -m qunzhu token --person telegram:42 --data-dir {data_dir}  (a member token for development)"


async def _serve(host: str, port: int, data_dir: str) -> None:
    import uvicorn

    data_path = Path(data_dir).resolve()  # noqa: ASYNC240 - once, before serving

    async with embedded_platform(data_dir) as gateway:
        from qunzhu_common.httpserver import HeaderTimeoutProtocol

        config = uvicorn.Config(gateway, host=host, port=port, log_level="info", access_log=False,
                                http=HeaderTimeoutProtocol)
        server = uvicorn.Server(config)
        base = f"http://{host}:{port}"
        print(
            f"\nQunzhu (embedded) on {base}\n"
            f"  API docs      {base}/docs\n"
            f"  OpenAPI       {base}/openapi.json\n"
            f"  readiness     {base}/services\n"
            f"  metrics       {base}/metrics  ({base}/services/<name>/metrics for each service)\n"
            f"  data          {data_path}\n"
            f"  login         {_token_hint(data_dir)}\n"
            "Ctrl-C stops it.\n",
            flush=True,
        )
        await server.serve()


def run_embedded(*, host: str = "127.0.0.1", port: int = 8000, data_dir: str = "data") -> None:
    configure_logging("INFO", "text")
    try:
        asyncio.run(_serve(host, port, data_dir))
    except KeyboardInterrupt:
        pass
    print("Qunzhu stopped.")
