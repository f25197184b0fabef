"""Issue 15 — authorization where the data lives, tried as the attacker of the report did:

- every operation of the gateway's OpenAPI × every role, with dot segments (`.`, `..`, `%2e`), encoded
  slashes and backslashes and empty segments, sent byte for byte (http.client does not normalise): 400,
  and nothing written anywhere (row counts and topic end offsets);
- each service's own port reached directly with an actor that is unsigned, forged, expired or signed for
  another request: 401, nothing written;
- the code takeover: A's owner joins B; a code asked through B's connector (read by B's owner) gives a
  token that acts in B only — A's API keys, ledger and connectors answer 403.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.paths import non_canonical_reason
from qunzhu_common import actor as actors
from tests import summary
from tests.integration.actions import bearer, bot_bridge, owner_token, webhook_secret
from tests.integration.stack import INTERNAL_KEY
from tests.security import effects, routes
from tests.security.harness import ROLES, Cast, SecurityStack, _eventually

pytestmark = pytest.mark.integration


def variants(path: str, other_community: str, community: str) -> list[str]:
    """Non-canonical spellings of `path` (a filled /api/v1/<service>/… or /api/v1/communities/… path)."""
    head, _, tail = path.partition("/communities/")
    out = [
        f"{head}/./communities/{tail}",
        f"{head}/%2e/communities/{tail}",
        f"{head}/x/../communities/{tail}",
        f"{head}/x/%2E%2e/communities/{tail}",
        f"{head}//communities/{tail}",
        f"{head}/communities%2f{tail}",
        f"{head}/communities%5C{tail}",
        f"{head}\\communities/{tail}",
    ]
    if tail.startswith(community):
        # The report's write: authorized for B, executed on A.
        out.append(f"{head}/communities/{other_community}/../{tail}")
        out.append(f"{head}/communities/{other_community}/%2e%2e/{tail}")
    return out


def raw(connection: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
        body: bytes | None) -> int:
    connection.request(method, path, body=body, headers={**headers, "content-type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


async def test_non_canonical_paths_get_400_for_every_route_and_role_and_change_nothing(
    secure_stack: SecurityStack, cast: Cast
):
    async with httpx.AsyncClient(timeout=30) as client:
        document = (await client.get(f"{secure_stack.gateway}/openapi.json")).json()
    before = await served_requests(secure_stack)
    host = urlsplit(secure_stack.gateway)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    values = {"community_id": cast.a.id, "member_id": cast.a.people["member"],
              "person_id": cast.a.people["member"], "action": "content.post"}
    wrong: list[str] = []
    tried = 0
    try:
        for op in routes.operations(document):
            filled = routes.fill_path(op, values)
            if "/communities/" not in filled:
                continue
            body = b'{"name": "x", "person_id": "telegram:1"}' if op.method != "GET" else None
            for spelling in variants(filled, cast.b.id, cast.a.id):
                assert non_canonical_reason(spelling.split("?")[0]) is not None, spelling
                for role in ROLES:
                    status = raw(connection, op.method, spelling, cast.headers[role], body)
                    tried += 1
                    if status != 400:
                        wrong.append(f"{role:9s} {status} {op.method} {spelling}")
    finally:
        connection.close()
    summary.bad_inputs("non-canonical path (dot segments, encoded slashes)", tried)
    assert tried > 1000
    assert not wrong, "\n".join(wrong[:50])
    # Refused before routing: no route of the gateway ran, and no request reached any service. (Row counts
    # would not show it alone: schedules made by earlier tests keep firing in the background.)
    assert await served_requests(secure_stack) == before


async def served_requests(stack: SecurityStack, *, writes_that_succeeded: bool = False) -> dict[str, float]:
    """Requests each process has served, by its own `qunzhu_<service>_http_requests_total` (scrapes and
    probes left out; or only writes answered 2xx)."""
    counts = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name, process in stack.services.items():
            text = (await client.get(process.url + "/metrics")).text
            counts[name] = sum(
                sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                if sample.name == f"qunzhu_{name}_http_requests_total"
                and sample.labels.get("route") not in ("/metrics", "/readyz", "/healthz")
                and (not writes_that_succeeded
                     or (sample.labels.get("method") != "GET" and sample.labels.get("status", "").startswith("2"))))
    return counts


def _signed(key: bytes, actor: actors.Actor, method: str, path: str, **kwargs) -> dict[str, str]:
    return actors.sign(key, actor, method=method, path=path, query=[], **kwargs)


async def test_a_service_port_reached_directly_believes_no_unsigned_or_forged_actor(
    secure_stack: SecurityStack, cast: Cast
):
    a, owner = cast.a.id, cast.a.owner
    key = INTERNAL_KEY.encode()
    wrong_key = b"not-the-internal-key-" + uuid.uuid4().hex.encode()
    platform = actors.Actor(id=actors.PLATFORM_OPERATOR, kind="platform")
    writes = {
        "membership": ("PATCH", f"/communities/{a}", {"name": "被改名"}),
        "content": ("POST", f"/communities/{a}/posts", {"title": "冒名", "body": "冒名发帖"}),
        "engagement": ("POST", f"/communities/{a}/rules", {"name": "x", "activity": "message", "points": 100}),
    }
    reads = {
        "membership": f"/communities/{a}/ledger",
        "content": f"/communities/{a}/schedules",
        "engagement": f"/communities/{a}/lurkers",
    }
    before = await served_requests(secure_stack, writes_that_succeeded=True)
    answers: list[tuple[str, str, int]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for service, (method, path, body) in writes.items():
            base = secure_stack.services[service].url
            attempts = {
                "unsigned": {actors.ACTOR_HEADER: owner},
                "forged": _signed(wrong_key, actors.Actor(id=owner), method, path),
                "forged platform": _signed(wrong_key, platform, method, path),
                "expired": _signed(key, actors.Actor(id=owner), method, path, now=time.time() - 3600),
                "other path": _signed(key, actors.Actor(id=owner), method, f"/communities/{cast.b.id}"),
                "other method": _signed(key, actors.Actor(id=owner), "GET", path),
                "assertion for someone else": {
                    **_signed(key, actors.Actor(id=cast.b.people["member"]), method, path),
                    actors.ACTOR_HEADER: owner},
                "garbage": {actors.ACTOR_HEADER: owner, actors.ASSERTION_HEADER: "v1.1.e30.00"},
            }
            for name, headers in attempts.items():
                response = await client.request(method, base + path, json=body, headers=headers)
                answers.append((service, f"write {name}", response.status_code))
                effects.assert_problem(response, 401)
            read = reads[service]
            for name, headers in {"unsigned": {actors.ACTOR_HEADER: owner},
                                  "forged": _signed(wrong_key, actors.Actor(id=owner), "GET", read)}.items():
                response = await client.get(base + read, headers=headers)
                answers.append((service, f"read {name}", response.status_code))
                effects.assert_problem(response, 401)
            # No actor at all: the service refuses the write itself (it no longer trusts the gateway alone).
            anonymous = await client.request(method, base + path, json=body)
            answers.append((service, "write anonymous", anonymous.status_code))
            assert anonymous.status_code in (401, 403), (service, anonymous.text)
            anonymous_read = await client.get(base + read)
            assert anonymous_read.status_code in (401, 403), (service, anonymous_read.text)
            # The real signature still works: the refusals above were about the actor, not the route.
            genuine = await client.get(base + read, headers=_signed(key, actors.Actor(id=owner), "GET", read))
            assert genuine.status_code == 200, (service, read, genuine.text)
    summary.bad_inputs("service port reached directly with an untrusted actor", len(answers))
    # No write succeeded anywhere while the test ran (each service's own 2xx count of non-GET requests).
    assert await served_requests(secure_stack, writes_that_succeeded=True) == before


def test_a_code_delivered_through_b_gives_a_token_for_b_only(secure_stack: SecurityStack, cast: Cast):
    gw, a, b = secure_stack.gateway, cast.a, cast.b
    victim = a.owner
    b_owner = bearer(owner_token(secure_stack.data_dir, b.owner))
    with bot_bridge() as (bridge_url, received), httpx.Client(timeout=30) as client:
        # B's owner runs B's connector (a bridge that sees every private message it carries).
        connector = client.post(f"{gw}/api/v1/communities/{b.id}/connectors", headers=b_owner, json={
            "platform": "generic", "identity_platform": "telegram", "groups": [f"takeover-{b.id}"],
            "secrets": {"signing_secrets": [webhook_secret()], "outbound_url": bridge_url,
                        "outbound_secret": webhook_secret()}})
        assert connector.status_code == 201, connector.text
        # A's owner joins B as a member (or has not even joined: the code is sent either way).
        joined = client.post(f"{gw}/api/v1/membership/communities/{b.id}/join", json={"accepted_rules_version": 1},
                             headers=cast.headers["owner"])
        assert joined.status_code in (200, 201), joined.text
        asked = client.post(f"{gw}/api/v1/auth/codes", json={"community_id": b.id, "member_id": victim})
        assert asked.status_code == 202
        sent = _eventually(lambda: [m for m in received if victim.split(":")[1] in json.dumps(m)],
                           until=bool, what="the code through B's bridge")
        code = re.search(r"验证码：(\d{6})", sent[0]["data"]["text"]).group(1)
        token = client.post(f"{gw}/api/v1/auth/token", json={"member_id": victim, "code": code})
        assert token.status_code == 200, token.text
        assert token.json()["community_id"] == b.id
        stolen = bearer(token.json()["access_token"])

        refused = {
            "A's API keys": client.get(f"{gw}/api/v1/communities/{a.id}/api-keys", headers=stolen),
            "A's connectors": client.get(f"{gw}/api/v1/communities/{a.id}/connectors", headers=stolen),
            "A's ledger": client.get(f"{gw}/api/v1/membership/communities/{a.id}/ledger", headers=stolen),
            "A's lurkers": client.get(f"{gw}/api/v1/engagement/communities/{a.id}/lurkers", headers=stolen),
            "A's schedules": client.get(f"{gw}/api/v1/content/communities/{a.id}/schedules", headers=stolen),
            "A's rules": client.post(f"{gw}/api/v1/engagement/communities/{a.id}/rules", headers=stolen,
                                     json={"name": "x", "activity": "message", "points": 100}),
            "a new community": client.post(f"{gw}/api/v1/communities", headers=stolen,
                                           json={"name": "冒名", "positioning": "x", "owner_id": victim}),
        }
        for what, response in refused.items():
            assert response.status_code == 403, (what, response.status_code, response.text)
        # In B, the token is the person's own: they see their own membership there.
        mine = client.get(f"{gw}/api/v1/membership/communities/{b.id}/members/{victim}", headers=stolen)
        assert mine.status_code == 200, mine.text
        # The same person's person-wide login still owns A.
        assert client.get(f"{gw}/api/v1/communities/{a.id}/api-keys", headers=cast.headers["owner"]).status_code == 200
