"""#19: in a consumer's transaction engagement's events are staged and written with one outbox insert
before the commit, in emission order; a rolled-back savepoint takes its events with it."""

from __future__ import annotations

from conftest import T0
from engagement.context import drop_staged_after, staged_mark
from qunzhu_common.events.contracts.engagement import LevelReached
from qunzhu_common.unit_of_work import mark_deferrable, run_deferred

CID = "c0ffee00-0000-4000-8000-000000000020"


def reached(person: str) -> LevelReached:
    return LevelReached(community_id=CID, person_id=person, level=2, previous_level=1, total_points=5, threshold=5,
                        reached_at=T0)


async def test_staged_events_are_written_once_in_order_and_a_dropped_savepoint_takes_its_own(engagement):
    ctx = engagement.app.state.engagement
    async with engagement.runtime.session_maker() as session, session.begin():
        mark_deferrable(session)
        await ctx.emit(session, type="level.reached", community_id=CID, data=reached("telegram:1"))
        mark = staged_mark(session)
        await ctx.emit(session, type="level.reached", community_id=CID, data=reached("telegram:2"))
        drop_staged_after(session, mark)  # as dispatch._guarded does when its savepoint rolls back
        await ctx.emit(session, type="level.reached", community_id=CID, data=reached("telegram:3"))
        assert await engagement.outbox_events("level.reached") == []  # not written yet
        await run_deferred(session)
    assert [e.data["person_id"] for e in await engagement.outbox_events("level.reached")] == \
        ["telegram:1", "telegram:3"]


async def test_outside_a_consumer_an_event_is_written_at_once(engagement):
    ctx = engagement.app.state.engagement
    async with engagement.runtime.session_maker() as session, session.begin():
        await ctx.emit(session, type="level.reached", community_id=CID, data=reached("telegram:1"))
    assert len(await engagement.outbox_events("level.reached")) == 1
