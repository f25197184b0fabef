"""Engagement keeps its own copy of each community, fed by membership's events."""

from __future__ import annotations

PROBLEM = "application/problem+json"


async def test_a_community_created_on_membership_appears_in_engagement(membership, engagement, eventually):
    created = (
        await membership.client.post(
            "/communities",
            json={
                "name": "夜跑团",
                "positioning": "每周三次夜跑",
                "owner_id": "o-1",
                "timezone": "Asia/Shanghai",
            },
        )
    ).json()

    async def copy() -> dict | None:
        response = await engagement.client.get(f"/communities/{created['id']}")
        return response.json() if response.status_code == 200 else None

    found = await eventually(copy, what="engagement's copy")
    assert {k: found[k] for k in ("id", "name", "positioning", "timezone", "created_at")} == {
        k: created[k] for k in ("id", "name", "positioning", "timezone", "created_at")
    }


async def test_unknown_community_is_a_404_problem(engagement):
    response = await engagement.client.get("/communities/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "nope" in response.json()["detail"]
