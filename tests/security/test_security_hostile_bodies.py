"""Issue 15, part 4 — no 5xx from input, anywhere: every operation of the gateway's OpenAPI that takes a
body, called by the community's owner (so authorization lets it through to the parser and the models),
with JSON 20,000 levels deep, a lone surrogate, NUL, a number past 64 bits and NaN. Each answer is a
4xx problem+json, and no write succeeds in any process while the sweep runs.
"""

from __future__ import annotations

import httpx
import pytest

from tests import summary
from tests.security import routes
from tests.security.harness import Cast, SecurityStack
from tests.security.test_security_paths_and_actors import served_requests

pytestmark = pytest.mark.integration

HOSTILE = {
    "deep array": b"[" * 20_000 + b"]" * 20_000,
    "deep object": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "lone surrogate": b'{"name": "\\ud800", "title": "\\udfff", "text": "\\ud800"}',
    "raw surrogate bytes": b'{"name": "\xed\xa0\x80"}',
    "NUL": b'{"name": "a\\u0000b", "title": "a\\u0000b"}',
    "number past 64 bits": b'{"points": 100000000000000000000000, "price_fen": 1e400}',
    "NaN": b'{"points": NaN, "price_fen": Infinity}',
}


async def test_hostile_bodies_get_4xx_on_every_endpoint_and_write_nothing(secure_stack: SecurityStack, cast: Cast):
    async with httpx.AsyncClient(timeout=60) as client:
        document = (await client.get(f"{secure_stack.gateway}/openapi.json")).json()
        operations = [op for op in routes.operations(document) if op.method in ("POST", "PUT", "PATCH")]
        values = {"community_id": cast.a.id, "member_id": cast.a.people["member"],
                  "person_id": cast.a.people["member"], "action": "content.post"}
        before = await served_requests(secure_stack, writes_that_succeeded=True)
        wrong: list[str] = []
        for op in operations:
            url = secure_stack.gateway + routes.fill_path(op, values)
            for name, body in HOSTILE.items():
                answer = await client.request(op.method, url, content=body, headers={
                    **cast.headers["owner"], "content-type": "application/json"})
                problem = answer.headers.get("content-type", "").startswith("application/problem+json")
                if not (400 <= answer.status_code < 500 and problem):
                    wrong.append(f"{answer.status_code} {op.method} {op.path} ({name}): {answer.text[:120]}")
        after = await served_requests(secure_stack, writes_that_succeeded=True)
    summary.bad_inputs("hostile JSON body (depth, surrogates, NUL, overflow, NaN)", len(operations) * len(HOSTILE))
    assert len(operations) > 50
    assert not wrong, "\n".join(wrong[:40])
    assert after == before
