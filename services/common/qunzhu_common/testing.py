"""Helpers the services' unit tests share (imported by their conftest.py files; never by service code).

Needs pytest and httpx, which only the `dev` extra installs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T] | T], *, within: float = 5.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy (and return it); fail the test past the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def serving(app: FastAPI, *, base_url: str = "http://t") -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it in-process."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
            yield client
