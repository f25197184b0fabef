"""Issue 7 fixes in the gateway: engagement writes are authorized here (engagement has no caller of its own),
request limits (size 413, stalled body 408, NUL and 64-bit overflow 422), webhook media types (415), and
control characters in proxied ids (the upstream call stays a valid URL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged

COMMUNITY = "c-guard"
OWNER, GUEST, MEMBER, OUTSIDER = "telegram:1", "telegram:2", "telegram:3", "telegram:9"


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"path": request.url.raw_path.decode()})


@pytest.fixture
async def gw(tmp_path, standalone_gateway, publish, eventually):
    from gateway.models import MemberRole

    async with standalone_gateway(tmp_path, respond=echo, api_max_body_bytes=4096) as gateway:
        await publish(gateway.app, "community.created", CommunityCreated(
            community_id=COMMUNITY, name="守门", positioning="先授权再转发", owner_id=OWNER,
            created_at=datetime.now(UTC)), COMMUNITY)
        for person, role in ((GUEST, "guest"), (MEMBER, "member")):
            await publish(gateway.app, "member.role_changed", MemberChanged(
                community_id=COMMUNITY, member_id=person, role=role, status="active",
                changed_at=datetime.now(UTC)), COMMUNITY)

        async def projected():
            async with gateway.app.state.runtime.session_maker() as session:
                return all([await session.get(MemberRole, (COMMUNITY, p)) for p in (OWNER, GUEST, MEMBER)])

        await eventually(projected, what="roles projected")
        yield gateway


async def test_engagement_writes_need_their_role_and_speak_only_for_the_caller(gw, member_headers):
    base = f"/api/v1/engagement/communities/{COMMUNITY}"
    as_ = {p: member_headers(gw.app, p) for p in (OWNER, GUEST, MEMBER, OUTSIDER)}
    submissions = f"{base}/assignments/a1/submissions"
    grade = f"{submissions}/s1/grade"
    answers = {
        "outsider sets rules": await gw.client.post(f"{base}/rules", json={}, headers=as_[OUTSIDER]),
        "member sets rules": await gw.client.post(f"{base}/rules", json={}, headers=as_[MEMBER]),
        "member submits as another": await gw.client.post(submissions, json={"person_id": GUEST},
                                                          headers=as_[MEMBER]),
        "member grades": await gw.client.post(grade, json={"graded_by": MEMBER}, headers=as_[MEMBER]),
        "guest grades as the owner": await gw.client.post(grade, json={"graded_by": OWNER}, headers=as_[GUEST]),
        "member submits": await gw.client.post(submissions, json={"person_id": MEMBER}, headers=as_[MEMBER]),
        "guest grades": await gw.client.post(grade, json={"graded_by": GUEST}, headers=as_[GUEST]),
        "owner sets rules": await gw.client.post(f"{base}/rules", json={}, headers=as_[OWNER]),
        "anonymous reads": await gw.client.get(f"{base}/leaderboard"),
        "outsider reads": await gw.client.get(f"{base}/leaderboard", headers=as_[OUTSIDER]),
        "member reads lurkers": await gw.client.get(f"{base}/lurkers", headers=as_[MEMBER]),
        "member reads": await gw.client.get(f"{base}/leaderboard", headers=as_[MEMBER]),
    }
    assert {k: v.status_code for k, v in answers.items()} == {
        "outsider sets rules": 403, "member sets rules": 403, "member submits as another": 403,
        "member grades": 403, "guest grades as the owner": 403,
        "member submits": 201, "guest grades": 201, "owner sets rules": 201,
        "anonymous reads": 401, "outsider reads": 403, "member reads lurkers": 403, "member reads": 201}
    forwarded = {c.url.path for c in gw.upstreams["engagement"].calls}
    assert f"/communities/{COMMUNITY}/rules" in forwarded and len(forwarded) == 4  # refused ones never left
    assert f"/communities/{COMMUNITY}/lurkers" not in forwarded


async def test_request_limits_answer_with_problems(gw, member_headers):
    url = f"/api/v1/membership/communities/{COMMUNITY}/plans"
    owner = member_headers(gw.app, OWNER)
    too_big = await gw.client.post(url, content=b"x" * 5000, headers=owner)

    async def trickle():
        for _ in range(5):
            yield b"x" * 1000

    streamed = await gw.client.post(url, content=trickle(), headers=owner)
    nul = await gw.client.post(url, content=b'{"name": "a\\u0000"}', headers=owner)
    nul_query = await gw.client.get(f"/api/v1/membership/communities/{COMMUNITY}/access?member_id=x%00")
    huge = await gw.client.get("/api/v1/membership/communities", params={"offset": str(10**20)})
    control = await gw.client.get(f"/api/v1/content/communities/{COMMUNITY}/posts/a%09b")
    assert [r.status_code for r in (too_big, streamed, nul, nul_query, huge)] == [413, 413, 422, 422, 422]
    assert all(r.headers["content-type"] == "application/problem+json" for r in (too_big, streamed, nul, huge))
    assert control.status_code == 201 and control.json()["path"].endswith("/posts/a%09b")


async def test_a_stalled_body_gets_a_408():
    from gateway.limits import BodyLimits, RequestTimeout

    async def app(scope, receive, send):  # reads the body as a route would
        while (await receive()).get("more_body"):
            pass

    async def stalled():
        await asyncio.sleep(5)
        return {"type": "http.request", "body": b"", "more_body": False}

    limits = BodyLimits(app, max_bytes=100, webhook_max_bytes=100, read_timeout_s=0.05)
    with pytest.raises(RequestTimeout):
        await limits({"type": "http", "path": "/api/v1/x", "query_string": b"", "headers": []}, stalled, None)


async def test_webhooks_refuse_a_media_type_the_provider_never_sends(gw):
    answer = await gw.client.post("/webhooks/payments/stripe", content=b"{}", headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and answer.headers["content-type"] == "application/problem+json"
