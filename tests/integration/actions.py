"""What integration tests do to the platform, written once so an API change is fixed in one place."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.stack import GATEWAY_OPERATOR_KEY

OWNER = "telegram:10001"


def community_body(**overrides: str) -> dict[str, str]:
    body = {"name": f"社群 {uuid.uuid4().hex[:6]}", "positioning": "每天一个增长实验", "owner_id": OWNER}
    body.update(overrides)
    return body


async def create_community(client: httpx.AsyncClient, base_url: str, path: str = "/communities") -> dict:
    """Create a community as its owner (X-Actor-Id is what the gateway sets after authentication)."""
    # Through the gateway the platform operator creates it for OWNER; a service directly takes X-Actor-Id.
    headers = {"X-API-Key": GATEWAY_OPERATOR_KEY} if path.startswith("/api/") else {"X-Actor-Id": OWNER}
    response = await client.post(base_url + path, json=community_body(), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def copy_status(client: httpx.AsyncClient, base_url: str, community_id: str) -> int:
    return (await client.get(f"{base_url}/communities/{community_id}")).status_code
