"""Engagement keeps its own copy of each community and its members, fed through a real LocalBus."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from qunzhu_common.bus.base import OutgoingRecord
from qunzhu_common.events.contracts.chat import ChatCommandIssued
from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry

PROBLEM = "application/problem+json"
AT = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


async def publish(bus, type_: str, data, community_id: str) -> None:
    envelope = new_envelope(type=type_, data=data, source="membership", community_id=community_id, occurred_at=AT)
    topic, key = default_registry().route(envelope)
    await bus.publish([OutgoingRecord(topic=topic, key=key, value=envelope.to_bytes())])


async def test_events_on_the_bus_reach_engagement_and_score(make_engagement, bus, eventually):
    cid = str(uuid.uuid4())
    async with make_engagement("live", run_consumers=True, run_relay=True) as engagement:
        await publish(bus, "community.created", CommunityCreated(
            community_id=cid, name="夜跑团", positioning="每周三次夜跑", owner_id="telegram:1", created_at=AT,
        ), cid)
        await publish(bus, "member.activated", MemberChanged(
            community_id=cid, member_id="telegram:2", role="member", status="active", joined_at=AT, changed_at=AT,
        ), cid)
        await publish(bus, "chat.command.issued", ChatCommandIssued(
            platform="telegram", group_id="telegram:-1", delivery_id="d1", message_id="m1", sender_id="telegram:2",
            command="checkin", sent_at=AT,
        ), cid)

        async def points() -> int:
            response = await engagement.client.get(f"/communities/{cid}/members/telegram:2/points")
            return response.status_code == 200 and response.json()["total_points"]

        assert await eventually(points, what="the check-in scored") == 5
        copy = (await engagement.client.get(f"/communities/{cid}")).json()
        assert (copy["name"], copy["timezone"]) == ("夜跑团", "Asia/Shanghai")


async def test_unknown_community_is_a_404_problem(engagement):
    response = await engagement.client.get("/communities/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "nope" in response.json()["detail"]
