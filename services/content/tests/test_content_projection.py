"""Content learns of communities from membership's events, also across a restart of content."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from content.models import CommunityCopy

CONSUMED = "qunzhu_content_events_consumed_total"
LABELS = {"topic": "membership.events.v1", "type": "community.created"}


async def test_a_community_created_on_membership_appears_in_content(
    membership, content, community_body, copy_of, eventually
):
    created = (
        await membership.client.post(
            "/communities", json=community_body(timezone="Asia/Tokyo"), headers={"X-Actor-Id": "platform-operator"}
        )
    ).json()

    copy = await eventually(lambda: copy_of(content, created["id"]), what="content's copy")

    assert copy["id"] == created["id"]
    assert copy["name"] == created["name"]
    assert copy["positioning"] == created["positioning"]
    assert copy["timezone"] == "Asia/Tokyo"
    assert copy["created_at"] == created["created_at"]
    assert copy["synced_at"] >= created["created_at"]


async def test_many_communities_all_arrive_exactly_once(
    membership, content, community_body, copy_of, eventually, tables
):
    ids = await asyncio.gather(
        *(_create(membership, community_body(name=f"群{i}", owner_id=f"wecom:o{i % 3}")) for i in range(12))
    )

    for community_id in ids:
        await eventually(lambda c=community_id: copy_of(content, c), what=f"copy of {community_id}")

    assert await content.count(tables["community_copy"]) == 12
    assert await content.count(tables["inbox"]) == 12
    await eventually(
        lambda: _is(content.metric(CONSUMED, outcome="processed", **LABELS), 12), what="12 processed"
    )
    assert await content.metric(CONSUMED, outcome="duplicate", **LABELS) == 0


async def test_events_missed_while_content_was_down_are_delivered_exactly_once(
    membership, start_content, community_body, copy_of, eventually, tables
):
    async with start_content() as content:
        before = [await _create(membership, community_body(name=f"before-{i}")) for i in range(3)]
        for community_id in before:
            await eventually(lambda c=community_id: copy_of(content, c), what="copies before the restart")

    # Content is down; membership keeps creating communities and publishing their events.
    missed = [await _create(membership, community_body(name=f"missed-{i}")) for i in range(4)]

    async with start_content() as content:
        for community_id in missed:
            copy = await eventually(lambda c=community_id: copy_of(content, c), what="a missed community")
            assert copy["name"].startswith("missed-")
        after = await _create(membership, community_body(name="after"))
        await eventually(lambda: copy_of(content, after), what="a community created after the restart")

        # Each missed event had its effect once, in this process; the old ones were not redone.
        await eventually(
            lambda: _is(content.metric(CONSUMED, outcome="processed", **LABELS), len(missed) + 1),
            what="only the missed and the new event processed by the restarted content",
        )
        assert await content.count(tables["community_copy"]) == 8
        assert await content.count(tables["inbox"]) == 8
        async with content.app.state.runtime.session_maker() as session:
            names = set((await session.execute(select(CommunityCopy.name))).scalars())
        assert names == {f"before-{i}" for i in range(3)} | {f"missed-{i}" for i in range(4)} | {"after"}


async def _create(membership, body: dict) -> str:
    # The platform operator creates communities for the owner it names (membership's rule).
    response = await membership.client.post("/communities", json=body, headers={"X-Actor-Id": "platform-operator"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _is(value, expected: float) -> bool:
    return await value == expected
