"""Issue 15: one canonical path, a signed actor for the services, community-scoped logins, rate limits that
key on who really authenticated."""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import unquote

import httpx
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_gateway_auth import COMMUNITY, LOGIN_BOT, OWNER, TELEGRAM_CONNECTOR, connectors_url, member, owned_community

from gateway.auth.tokens import SCOPE_CLAIM
from gateway.paths import ServicePath, non_canonical_reason
from gateway.upstream import Upstreams
from qunzhu_common import actor as actors


@pytest.fixture(name="gw")
async def gw_fixture(tmp_path, standalone_gateway, fake_platform):
    async with standalone_gateway(tmp_path, telegram_api_base=fake_platform.url,
                                  telegram_login_bot_token=LOGIN_BOT) as gateway:
        yield gateway


NON_CANONICAL = [
    "/api/v1/engagement/./communities/A/leaderboard",
    "/api/v1/engagement/%2e/communities/A/leaderboard",
    "/api/v1/engagement/%2E%2e/communities/A/leaderboard",
    "/api/v1/engagement/communities/B/../A/rules",
    "/api/v1/engagement/communities/B/%2e%2e/A/rules",
    "/api/v1/engagement/communities/B/.%2E/A/rules",
    "/api/v1/content/x/../communities/A/schedules",
    "/api/v1/engagement/communities%2fA/leaderboard",
    "/api/v1/engagement/communities%2FA/leaderboard",
    "/api/v1/engagement/communities%5cA/leaderboard",
    "/api/v1/engagement/communities\\A/leaderboard",
    "/api/v1/engagement//communities/A/leaderboard",
    "/api/v1/engagement/communities/A//leaderboard",
    "/api/v1/communities/.",
    "/api/v1/communities/..",
]


@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_paths_are_named(path):
    assert non_canonical_reason(path) is not None


@pytest.mark.parametrize("path", ["/api/v1/communities", "/api/v1/communities/", "/api/v1/communities/a.b",
                                  "/api/v1/communities/...", "/api/v1/communities/%E6%99%A8", "/a/%25"])
def test_canonical_paths_pass(path):
    assert non_canonical_reason(path) is None


SEGMENT = st.text(min_size=1, max_size=12).filter(lambda s: s not in (".", "..") and "/" not in s and "\\" not in s)


@given(st.lists(SEGMENT, min_size=1, max_size=6))
def test_the_path_forwarded_decodes_to_the_path_checked(segments):
    path = ServicePath.of(*segments)
    assert non_canonical_reason(path.encoded) is None
    assert unquote(path.encoded) == path.absolute
    assert ServicePath(path.text).segments == tuple(segments)


async def raw_request(app, method: str, raw_path: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Call the ASGI app with the path exactly as a client sent it (httpx would remove dot segments)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": unquote(raw_path), "raw_path": raw_path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"gw"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("gw", 80)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_dot_segments_and_encoded_slashes_get_400_before_anything_runs(platform):
    for path in NON_CANONICAL:
        for method, body in (("GET", b""), ("POST", b'{"name": "x"}')):
            status, headers, content = await raw_request(platform.app, method, path, body)
            assert status == 400, (method, path, content)
            assert headers["content-type"] == "application/problem+json"
            assert json.loads(content)["type"].endswith("non-canonical-path")
    status, _, _ = await raw_request(platform.app, "GET", "/api/v1/communities")
    assert status == 200


async def test_the_forwarded_actor_is_signed_for_exactly_the_request_forwarded():
    seen: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    key = b"k" * 32
    client = httpx.AsyncClient(transport=httpx.MockTransport(service), base_url="http://svc")
    upstreams = Upstreams({"engagement": client}, retries=0, internal_key=key)
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-type", b"application/json")],
             "query_string": b"b=2&a=1&a=0"}

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    from fastapi import Request

    from gateway.auth.principal import Principal

    principal = Principal(subject="telegram:5", kind="member", community_id="A")
    await upstreams.forward("engagement", Request(scope, receive), ServicePath("communities/A/rules"),
                            principal=principal)
    request = seen[0]
    query = [tuple(pair.split("=")) for pair in request.url.query.decode().split("&")]
    verified = actors.verify(key, actor_id=request.headers["x-actor-id"],
                             assertion=request.headers["x-actor-assertion"], method="POST",
                             path=unquote(request.url.path), query=query)
    assert verified == actors.Actor(id="telegram:5", kind="member", scope="A", role=None)
    for method, path in (("POST", "/communities/B/rules"), ("GET", "/communities/A/rules")):
        with pytest.raises(Exception, match="does not vouch"):
            actors.verify(key, actor_id="telegram:5", assertion=request.headers["x-actor-assertion"],
                          method=method, path=path, query=query)
    with pytest.raises(Exception, match="does not vouch"):
        actors.verify(b"another key" * 3, actor_id="telegram:5", assertion=request.headers["x-actor-assertion"],
                      method="POST", path="/communities/A/rules", query=query)
    await client.aclose()


async def test_a_code_gives_a_token_for_the_community_that_delivered_it(gw, fake_platform, publish, eventually):
    await owned_community(gw, publish, eventually)
    await member(gw, publish, eventually, "telegram:77", role="admin")
    assert (await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR,
                                 headers={"X-API-Key": "ops-admin-key-for-tests"})).status_code == 201

    async def login(person: str) -> httpx.Response:
        before = len(fake_platform.calls("/sendMessage"))
        asked = await gw.client.post("/api/v1/auth/codes", json={"community_id": COMMUNITY, "member_id": person})
        assert asked.status_code == 202
        sent = await eventually(lambda: fake_platform.calls("/sendMessage")[before:], what=f"a code for {person}")
        message = json.loads(sent[0]["body"])
        assert message["chat_id"] == person.split(":")[1]  # the person's private chat
        code = re.search(r"\d{6}", message["text"]).group()
        return await gw.client.post("/api/v1/auth/token", json={"member_id": person, "code": code})

    admin = await login("telegram:77")
    assert admin.status_code == 200 and admin.json()["community_id"] == COMMUNITY
    assert jwt.decode(admin.json()["access_token"], options={"verify_signature": False})[SCOPE_CLAIM] == COMMUNITY
    scoped = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    # Inside its community the token is the person's; elsewhere — even where the person is the owner — 403.
    assert (await gw.client.get(connectors_url(), headers=scoped)).status_code == 200
    await owned_community(gw, publish, eventually, "c-other", owner="telegram:77")
    elsewhere = await gw.client.get("/api/v1/communities/c-other/connectors", headers=scoped)
    assert elsewhere.status_code == 403
    created = await gw.client.post("/api/v1/communities", headers=scoped,
                                   json={"name": "别处", "positioning": "不行", "owner_id": "telegram:77"})
    assert created.status_code == 403
    # A person who is not a member yet gets a code too (to join from the chat), scoped the same way.
    newcomer = await login("telegram:4242")
    assert newcomer.status_code == 200 and newcomer.json()["community_id"] == COMMUNITY


async def test_a_blacklisted_person_gets_no_code(gw, fake_platform, publish, eventually):
    await owned_community(gw, publish, eventually)
    await member(gw, publish, eventually, "telegram:66", status="blacklisted")
    await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR, headers={"X-API-Key": "ops-admin-key-for-tests"})
    assert (await gw.client.post("/api/v1/auth/codes",
                                 json={"community_id": COMMUNITY, "member_id": "telegram:66"})).status_code == 202
    asked = await gw.client.post("/api/v1/auth/codes", json={"community_id": COMMUNITY, "member_id": "telegram:67"})
    assert asked.status_code == 202
    sent = await eventually(lambda: fake_platform.calls("/sendMessage"), what="the second person's code")
    assert [json.loads(s["body"])["chat_id"] for s in sent] == ["67"]


async def test_made_up_credentials_count_against_the_address(tmp_path, standalone_gateway):
    async with standalone_gateway(tmp_path, rate_limit_burst=3, rate_limit_per_s=0.5) as gw:
        answers = []
        for _ in range(5):
            headers = {"X-API-Key": "qz_" + secrets.token_hex(8) + "_" + secrets.token_hex(8)}
            answers.append((await gw.client.get("/api/v1/communities", headers=headers)).status_code)
        bearer = await gw.client.get("/api/v1/communities",
                                     headers={"Authorization": f"Bearer {secrets.token_hex(20)}"})
    assert answers == [401, 401, 401, 429, 429]
    assert bearer.status_code == 429


async def test_the_principal_has_its_own_bucket_once_authenticated(tmp_path, standalone_gateway, member_headers):
    async with standalone_gateway(tmp_path, rate_limit_burst=2, rate_limit_per_s=0.5) as gw:
        anonymous = [(await gw.client.get("/api/v1/communities")).status_code for _ in range(3)]
        signed_in = [(await gw.client.get("/api/v1/communities", headers=member_headers(gw.app, OWNER))).status_code
                     for _ in range(3)]
    assert anonymous == [200, 200, 429]
    assert signed_in == [200, 200, 429]


def test_x_forwarded_for_is_believed_only_from_trusted_proxies():
    from ipaddress import ip_network

    from starlette.requests import Request

    from gateway.auth.deps import client_address

    def request(peer: str, forwarded: str) -> Request:
        return Request({"type": "http", "client": (peer, 1), "headers": [(b"x-forwarded-for", forwarded.encode())]})

    proxies = [ip_network("10.0.0.0/8")]
    assert client_address(request("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"
    assert client_address(request("10.0.0.2", "1.2.3.4, 198.51.100.7"), proxies) == "198.51.100.7"
    assert client_address(request("10.0.0.2", "198.51.100.7, 10.0.0.3"), proxies) == "198.51.100.7"
    assert client_address(request("10.0.0.2", "1.2.3.4"), []) == "10.0.0.2"
