"""Membership's HTTP surface: communities, problem+json errors, probes, metrics, request ids."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from membership.app import create_app
from qunzhu_common.events.envelope import Envelope
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS

PROBLEM = "application/problem+json"

from qunzhu_common.testing import GatewayActorAuth, app_internal_key  # noqa: E402

OPERATOR = {"X-Actor-Id": "platform-operator"}  # creates communities for the owner_id given


async def test_created_community_can_be_read_and_listed(client, community_body):
    created = await client.post("/communities", json=community_body(entry_policies=["paid", "invite_only"]),
                                headers=OPERATOR)
    assert created.status_code == 201
    community = created.json()
    assert community["name"] == "晨读营"
    assert community["timezone"] == "Asia/Shanghai"
    assert community["entry_policies"] == ["paid", "invite_only"]
    assert datetime.fromisoformat(community["created_at"]).utcoffset() is not None

    fetched = await client.get(f"/communities/{community['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == community

    await client.post("/communities", json=community_body(owner_id="wecom:owner-2", name="夜跑团"), headers=OPERATOR)
    mine = (await client.get("/communities", params={"owner_id": "wecom:owner-1"})).json()
    everyone = (await client.get("/communities")).json()
    assert (mine["count"], [c["id"] for c in mine["data"]]) == (1, [community["id"]])
    assert everyone["count"] == 2


async def test_malformed_json_is_a_422_problem(client):
    response = await client.post(
        "/communities", content=b'{"name": "broken', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert problem["instance"] == "/communities"
    assert [e["type"] for e in problem["errors"]] == ["json_invalid"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"positioning": "x" * 281}, "positioning"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"entry_policies": ["free", "free"]}, "entry_policies"),
        ({"entry_policies": ["bribe"]}, "entry_policies"),
        ({"entry_policies": []}, "entry_policies"),
    ],
)
async def test_schema_invalid_body_is_a_422_problem_naming_the_field(
    client, community_body, overrides, field
):
    response = await client.post("/communities", json=community_body(**overrides), headers=OPERATOR)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert errors and all({"loc", "msg", "type"} <= set(e) for e in errors)
    assert any(e["loc"][:2] == ["body", field] for e in errors), errors
    # Nothing was created.
    assert (await client.get("/communities")).json()["count"] == 0


async def test_missing_fields_are_all_reported(client):
    response = await client.post("/communities", json={}, headers=OPERATOR)
    assert response.status_code == 422
    missing = {e["loc"][-1] for e in response.json()["errors"] if e["type"] == "missing"}
    assert missing == {"name", "positioning"}


async def test_unknown_community_is_a_404_problem(client):
    response = await client.get("/communities/does-not-exist")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 404
    assert problem["type"].endswith("community-not-found")
    assert "does-not-exist" in problem["detail"]


async def test_bad_query_parameters_are_a_422_problem(client):
    response = await client.get("/communities", params={"limit": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"] == ["query", "limit"]


async def test_probes_when_started(client):
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok"}


async def test_not_ready_before_start(tmp_path):
    from membership.settings import MembershipSettings

    app = create_app(MembershipSettings(data_dir=tmp_path))  # lifespan never ran
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 auth=GatewayActorAuth(lambda: app_internal_key(app))) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == PROBLEM
    assert "retry-after" in ready.headers


async def test_metrics_count_requests_by_route_template(client, community_body):
    community_id = (await client.post("/communities", json=community_body(), headers=OPERATOR)).json()["id"]
    await client.get(f"/communities/{community_id}")
    await client.get(f"/communities/{community_id}")
    await client.get("/communities/unknown-id")

    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    series = "qunzhu_membership_http_requests_total"
    by_id = "/communities/{community_id}"
    assert f'{series}{{method="GET",route="{by_id}",status="200"}} 2.0' in text
    assert f'{series}{{method="GET",route="{by_id}",status="404"}} 1.0' in text
    assert f'{series}{{method="POST",route="/communities",status="201"}} 1.0' in text
    assert community_id not in text and "unknown-id" not in text  # raw paths never become labels


async def test_request_id_is_echoed_and_becomes_the_event_correlation_id(
    client, bus, community_body, eventually
):
    created = await client.post("/communities", json=community_body(), headers={"X-Request-ID": "req-7f3a", **OPERATOR})
    assert created.headers["x-request-id"] == "req-7f3a"
    community_id = created.json()["id"]

    async def event_of_community() -> Envelope | None:
        for record in await bus.read_all(MEMBERSHIP_EVENTS):
            env = Envelope.from_bytes(record.value)
            if env.community_id == community_id:
                assert record.key == community_id
                return env
        return None

    env = await eventually(event_of_community, what="community.created on the bus")
    assert env.type == "community.created"
    assert env.source == "membership"
    assert env.correlation_id == "req-7f3a"
    assert env.data["name"] == "晨读营"


async def test_a_request_without_id_gets_a_fresh_one(client):
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert all(uuid.UUID(i) for i in ids)
