"""Part 6 — resource limits hold on the real processes: body size caps (413), pagination caps (422 past the
documented maximum, generated from the OpenAPI document), per-client rate limits (429 + Retry-After) and
slow clients (headers or body trickling in are cut off with a 408). Every refusal is problem+json.

The `limits` gateway of the stack has small limits: a bucket of 5 refilling 1/s, 64 KiB API bodies,
2 s to send the headers and 2 s between two parts of a body.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests import summary
from tests.integration.probes import eventually
from tests.security.effects import assert_problem
from tests.security.harness import LIMITS_BURST, LIMITS_READ_TIMEOUT_S, SecurityStack

pytestmark = pytest.mark.integration
API_LIMIT = 65536


async def test_bodies_over_the_limit_are_refused_before_they_are_read(secure_stack, cast):
    url = f"{secure_stack.limits.url}/api/v1/membership/communities/{cast.a.id}/plans"
    big = b'{"name": "' + b"x" * (API_LIMIT + 10) + b'"}'

    async def stream():
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    async with httpx.AsyncClient(timeout=30) as client:
        declared = await client.post(url, content=big,
                                     headers={**cast.headers["owner"], "content-type": "application/json"})
        chunked = await client.post(url, content=stream(), headers={**cast.headers["owner"],
                                                                    "content-type": "application/json"})
        own_route = await client.post(f"{secure_stack.limits.url}/api/v1/communities/{cast.a.id}/api-keys",
                                      content=big, headers=cast.headers["owner"])
        default = await client.post(f"{secure_stack.gateway}/api/v1/membership/communities/{cast.a.id}/plans",
                                    content=b"[" + b"1," * (1024 * 1024) + b"1]", headers=cast.headers["owner"])
    for answer in (declared, chunked, own_route, default):
        assert_problem(answer, 413)
    summary.bad_inputs("oversized API body", 4)


async def test_pagination_is_capped_where_the_api_documents_a_maximum(secure_stack, cast):
    async with httpx.AsyncClient(timeout=30) as client:
        document = (await client.get(f"{secure_stack.gateway}/openapi.json")).json()
    capped = []
    for path, items in document["paths"].items():
        get = items.get("get")
        if not get or not path.startswith("/api/v1/"):
            continue
        params = {p["name"]: p for p in get.get("parameters", []) if p.get("in") == "query"}
        limit = params.get("limit")
        if limit is not None and "maximum" in limit.get("schema", {}):
            capped.append((path, limit["schema"]["maximum"], "offset" in params))
    assert len(capped) >= 5, capped
    owner, operator = cast.headers["owner"], {"X-API-Key": "integration-platform-operator-key"}
    async with httpx.AsyncClient(timeout=30) as client:
        for path, maximum, has_offset in capped:
            url = secure_stack.gateway + path.replace("{community_id}", cast.a.id)
            if "{" in url:
                continue
            # Authorized, so what is left to refuse is the parameter.
            headers = operator if path.startswith("/api/v1/ops/") else owner
            over = await client.get(url, params={"limit": maximum + 1}, headers=headers)
            assert_problem(over, 422)
            if has_offset:
                assert_problem(await client.get(url, params={"offset": -1}, headers=headers), 422)
            at_cap = await client.get(url, params={"limit": maximum}, headers=headers)
            assert at_cap.status_code != 422, (path, at_cap.text)
            summary.bad_inputs("limit past the documented maximum", 2 if has_offset else 1)


async def test_a_client_past_its_rate_gets_429_with_retry_after_others_do_not(secure_stack, cast):
    url = f"{secure_stack.limits.url}/api/v1/communities/{cast.a.id}"
    async with httpx.AsyncClient(timeout=10) as client:
        answers = [await client.get(url, headers=cast.headers["member"]) for _ in range(LIMITS_BURST + 5)]
        other = await client.get(url, headers=cast.headers["guest"])
        limited = [a for a in answers if a.status_code == 429]
        statuses = [a.status_code for a in answers]
        assert limited and all(s == 200 for s in statuses[:LIMITS_BURST - 1]), statuses
        for answer in limited:
            assert_problem(answer, 429)
            assert int(answer.headers["Retry-After"]) >= 1
        assert other.status_code == 200  # buckets are per client
        started = time.monotonic()
        again = await eventually(lambda: client.get(url, headers=cast.headers["member"]),
                                 until=lambda r: r.status_code == 200, timeout=10, what="the bucket refilled")
        assert again.status_code == 200 and time.monotonic() - started < 5
    summary.bad_inputs("request past the rate limit", len(limited))


async def _raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _closed_with(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it is still open by then)."""
    return await asyncio.wait_for(reader.read(-1), timeout=within)


async def test_slow_clients_are_cut_off_with_a_408(secure_stack: SecurityStack, cast):
    base, margin = secure_stack.limits.url, LIMITS_READ_TIMEOUT_S + 4
    started = time.monotonic()
    # Headers trickling in (slowloris): a request line and one header, then nothing.
    reader, writer = await _raw(base)
    writer.write(b"GET /api/v1/communities HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await writer.drain()
    headers_cut = await _closed_with(reader, margin)
    writer.close()
    # Connected, never a byte.
    reader, writer = await _raw(base)
    silent_cut = await _closed_with(reader, margin)
    writer.close()
    # A body promised, a part sent, then nothing.
    reader, writer = await _raw(base)
    writer.write(f"POST /api/v1/membership/communities/{cast.a.id}/plans HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: {cast.headers['owner']['Authorization']}\r\ncontent-type: application/json\r\n"
                 "content-length: 100\r\n\r\n{\"name\": ".encode())
    await writer.drain()
    body_cut = await _closed_with(reader, margin)
    writer.close()
    elapsed = time.monotonic() - started

    for answer in (headers_cut, silent_cut, body_cut):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"application/problem+json" in head.lower() and b'"status":408' in body.replace(b" ", b"")
    assert elapsed < 3 * margin
    # The same gateway still serves a client that behaves.
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{base}/api/v1/communities/{cast.a.id}")).status_code == 200
    summary.bad_inputs("slow client", 3)


async def test_values_postgresql_cannot_store_never_reach_a_service(secure_stack, cast):
    """NUL in text and integers past 64 bits: the services answered 500 to them (found by the fuzzer)."""
    base = f"{secure_stack.gateway}/api/v1/membership/communities/{cast.a.id}"
    async with httpx.AsyncClient(timeout=10) as client:
        answers = [
            await client.get(f"{base}/access", params={"member_id": "telegram:1\x00"}, headers=cast.headers["owner"]),
            await client.get(f"{base}/members/telegram:1%00", headers=cast.headers["owner"]),
            await client.patch(f"{base}/members/{cast.a.people['member']}", headers=cast.headers["member"],
                               content=b'{"display_name": "a\\u0000b"}'),
            await client.get(f"{secure_stack.gateway}/api/v1/membership/communities",
                             params={"offset": str(10**27), "limit": 5}),
        ]
    for answer in answers:
        assert_problem(answer, 422)
    summary.bad_inputs("NUL character or 64-bit overflow", len(answers))
