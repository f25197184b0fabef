"""When a service cannot be reached the gateway answers 503 problem+json with Retry-After."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from qunzhu_common.bus.local import LocalBus

PROBLEM = "application/problem+json"


@pytest.fixture
async def gateway_without_membership(tmp_path, serve_gateway, upstream, refusing, ready):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    membership = upstream(refusing)
    others = {name: upstream(ready) for name in ("content", "engagement")}
    app = create_app(
        GatewaySettings(data_dir=tmp_path, upstream_retries=2),
        bus=bus,
        transports={"membership": membership.transport, **{n: u.transport for n, u in others.items()}},
    )
    try:
        async with serve_gateway(app) as gateway:
            yield gateway, membership
    finally:
        await bus.stop()


def _assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    problem = response.json()
    assert problem["status"] == 503
    assert "membership" in problem["detail"]


async def test_create_is_503_and_not_retried(gateway_without_membership, community_body, member_headers):
    gateway, membership = gateway_without_membership

    response = await gateway.client.post(
        "/api/v1/communities", json=community_body(), headers=member_headers(gateway.app, "telegram:1")
    )

    _assert_unavailable(response)
    # A POST is not idempotent: one attempt, never a second community behind the caller's back.
    assert len(membership.calls) == 1


async def test_read_is_503_after_its_retries(gateway_without_membership):
    gateway, membership = gateway_without_membership

    response = await gateway.client.get("/api/v1/communities/c-1")

    _assert_unavailable(response)
    assert len(membership.calls) == 3  # 1 + upstream_retries


async def test_services_reports_which_one_is_unreachable(gateway_without_membership):
    gateway, _membership = gateway_without_membership

    response = await gateway.client.get("/services")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "retry-after" in response.headers
    assert response.json()["services"] == {
        "membership": "unreachable",
        "content": "ready",
        "engagement": "ready",
    }
    # The gateway itself is alive and ready: only the service behind it is down.
    assert (await gateway.client.get("/readyz")).status_code == 200
