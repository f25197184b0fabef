"""The public API end to end on the embedded platform: gateway → membership → bus → content, engagement."""

from __future__ import annotations

from qunzhu_common.events.envelope import Envelope
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS

PROBLEM = "application/problem+json"


async def test_create_then_read_a_community_through_the_gateway(platform, community_body, member_headers):
    created = await platform.client.post(
        "/api/v1/communities", json=community_body(), headers=member_headers(platform.app, "telegram:1")
    )
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    community = created.json()

    fetched = await platform.client.get(f"/api/v1/communities/{community['id']}")
    listed = await platform.client.get("/api/v1/communities", params={"owner_id": "telegram:1"})

    assert fetched.status_code == 200
    assert fetched.json() == community
    assert listed.json() == {"data": [community], "count": 1}


async def test_service_errors_pass_through_as_problems(platform, community_body, member_headers):
    invalid = await platform.client.post(
        "/api/v1/communities", json=community_body(name=""), headers=member_headers(platform.app, "telegram:1")
    )
    unknown = await platform.client.get("/api/v1/communities/nope")

    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == PROBLEM
    assert invalid.json()["errors"][0]["loc"] == ["body", "name"]
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM


async def test_all_services_report_ready(platform):
    response = await platform.client.get("/services")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "services": {"membership": "ready", "content": "ready", "engagement": "ready"},
    }
    assert (await platform.client.get("/readyz")).status_code == 200
    probe = await platform.client.get("/services/content/readyz")
    assert probe.status_code == 200
    assert probe.json()["service"] == "content"


async def test_the_request_id_follows_the_community_to_its_event_and_consumers(
    platform, community_body, eventually, member_headers
):
    created = await platform.client.post(
        "/api/v1/communities", json=community_body(),
        headers={"X-Request-ID": "front-end-42", **member_headers(platform.app, "telegram:1")},
    )
    assert created.headers["x-request-id"] == "front-end-42"
    community_id = created.json()["id"]
    bus = platform.app.state.runtime.bus

    records = await eventually(lambda: bus.read_all(MEMBERSHIP_EVENTS), what="the event")
    (env,) = [Envelope.from_bytes(r.value) for r in records]
    assert env.community_id == community_id
    assert env.correlation_id == "front-end-42"

    consumed = (
        'events_consumed_total{outcome="processed",topic="membership.events.v1",type="community.created"} 1.0'
    )

    async def consumed_by(service: str) -> bool:
        return consumed in (await platform.client.get(f"/services/{service}/metrics")).text

    await eventually(lambda: consumed_by("content"), what="content consumed it")
    await eventually(lambda: consumed_by("engagement"), what="engagement consumed it")
