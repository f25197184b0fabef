"""Scoring rules are refused (422 problem) outside their documented bounds, before they can score anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engagement.scoring.rules import MAX_DAILY_CAP, MAX_LEVEL_THRESHOLD, MAX_POINTS


@pytest.mark.parametrize("body", [
    {"rules": {"points": {"effective_message": 10**30}}},
    {"rules": {"points": {"effective_message": MAX_POINTS + 1}}},
    {"rules": {"points": {"effective_message": -1}}},
    {"rules": {"daily_caps": {"effective_message": MAX_DAILY_CAP + 1}}},
    {"rules": {"grade_bonus": {"5": MAX_POINTS + 1}}},
    {"rules": {"level_thresholds": [0, 5, MAX_LEVEL_THRESHOLD + 1]}},
    {"effective_from": "9999-01-01T00:00:00Z"},
    {"effective_from": (datetime.now(UTC) + timedelta(days=400)).isoformat()},
    {"effective_from": "1999-12-31T00:00:00Z"},
])
async def test_rules_outside_the_bounds_are_refused(engagement, body):
    cid = await engagement.community()
    response = await engagement.client.post(f"/communities/{cid}/rules", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    versions = (await engagement.client.get(f"/communities/{cid}/rules")).json()
    assert len(versions["versions"]) <= 1, "nothing was stored beyond the default version"


async def test_rules_at_the_bounds_are_accepted(engagement):
    cid = await engagement.community()
    response = await engagement.client.post(f"/communities/{cid}/rules", json={
        "rules": {"points": {"effective_message": MAX_POINTS}, "daily_caps": {"effective_message": MAX_DAILY_CAP},
                  "level_thresholds": [0, 5, MAX_LEVEL_THRESHOLD]},
        "effective_from": (datetime.now(UTC) + timedelta(days=300)).isoformat()})
    assert response.status_code == 201, response.text
