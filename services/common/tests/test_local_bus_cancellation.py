"""A publisher cancelled mid-publish (a relay stopping with its service) must not break the shared bus.

In embedded mode the four services share one LocalBus; one service stopping cancels its outbox relay,
possibly inside `publish`. The others must go on publishing and committing positions on the same bus.
"""

from __future__ import annotations

import asyncio

import pytest

TOPIC = "cancel.v1"


@pytest.mark.parametrize("steps_before_cancel", range(0, 12))
async def test_a_cancelled_publish_leaves_the_bus_usable(
    open_bus, record, recorder, eventually, commit_watcher, steps_before_cancel
):
    bus = await open_bus(partitions=1)
    await bus.publish([record(TOPIC, "k", "before")])

    batch = [record(TOPIC, "k", "cancelled-1"), record(TOPIC, "k", "cancelled-2")]
    publishing = asyncio.create_task(bus.publish(batch))
    for _ in range(steps_before_cancel):
        await asyncio.sleep(0)
    publishing.cancel()
    (outcome,) = await asyncio.gather(publishing, return_exceptions=True)
    # Cancelled, or already done when the cancel came: never a database error.
    assert outcome is None or isinstance(outcome, asyncio.CancelledError), repr(outcome)

    # Another service keeps publishing on the same bus…
    await bus.publish([record(TOPIC, "k", "after")])
    values = [r.value.decode() for r in await bus.read_all(TOPIC)]
    assert values[0] == "before" and values[-1] == "after"
    # …and a cancelled batch is all or nothing, never half of it.
    assert values[1:-1] in ([], ["cancelled-1", "cancelled-2"])
    assert [r.offset for r in await bus.read_all(TOPIC)] == list(range(len(values)))

    # Consumer positions committed now are durable: a restart does not deliver those records again.
    seen, watcher = recorder(), commit_watcher()
    await bus.subscribe(group_id="g", topics=[TOPIC], handler=seen, observer=watcher)
    await eventually(lambda: len(seen.records) == len(values), what="every record consumed")
    watcher.mark()
    await eventually(lambda: watcher.reported(TOPIC) == {0}, what="position committed")
    await bus.stop()

    reopened = await open_bus(partitions=1)
    again = recorder()
    await reopened.subscribe(group_id="g", topics=[TOPIC], handler=again)
    await reopened.publish([record(TOPIC, "k", "after-restart")])
    await eventually(lambda: len(again.records) >= 1, what="a record after the restart")
    assert again.values == ["after-restart"]
