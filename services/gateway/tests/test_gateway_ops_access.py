"""The services' metrics (revenue, member counts) through the public gateway: loopback callers, or the ops
token / platform operator key from anywhere else; health and readiness stay public."""

from __future__ import annotations

import httpx

OPS_TOKEN = "ops-token-for-tests"
REMOTE = ("203.0.113.7", 40000)  # TEST-NET-3: a caller from outside the machine


def _client(app, client_address: tuple[str, int]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client_address)
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


async def test_remote_callers_need_the_ops_token_or_operator_key(tmp_path, standalone_gateway, admin_headers):
    async with standalone_gateway(tmp_path, ops_token=OPS_TOKEN) as gateway:
        async with _client(gateway.app, REMOTE) as remote:
            refused = await remote.get("/services/membership/metrics")
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            wrong = await remote.get("/services/membership/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
            calls_before = len(gateway.upstreams["membership"].calls)

            with_token = await remote.get(
                "/services/membership/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
            )
            with_key = await remote.get("/services/membership/metrics", headers=admin_headers)
            health = await remote.get("/services/membership/readyz")

        assert (with_token.status_code, with_key.status_code, health.status_code) == (200, 200, 200)
        # The refused calls never reached the service.
        assert len(gateway.upstreams["membership"].calls) == calls_before + 3


async def test_loopback_needs_nothing_and_no_token_means_loopback_only(tmp_path, standalone_gateway):
    async with standalone_gateway(tmp_path) as gateway:
        async with _client(gateway.app, ("127.0.0.1", 50000)) as local, _client(gateway.app, ("::1", 50000)) as v6:
            assert (await local.get("/services/engagement/metrics")).status_code == 200
            assert (await v6.get("/services/engagement/metrics")).status_code == 200
        async with _client(gateway.app, REMOTE) as remote:
            # No ops token configured: a bearer of anything is not enough.
            response = await remote.get("/services/engagement/metrics", headers={"Authorization": "Bearer "})
            assert response.status_code == 403
