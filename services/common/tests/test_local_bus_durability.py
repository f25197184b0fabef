"""LocalBus durability: the log and each group's position survive a restart of the process."""

from __future__ import annotations

import asyncio
from collections import Counter

TOPIC = "ledger.v1"


class Crash(BaseException):
    """Stands for the process dying inside a handler: not an error the bus may catch and retry."""


async def test_consumption_resumes_from_the_committed_position_after_a_restart(
    open_bus, record, eventually, commit_watcher
):
    bus = await open_bus(partitions=3)
    records = [record(TOPIC, f"member-{i % 5}", f"r{i:02d}") for i in range(40)]
    await bus.publish(records)

    done_before: list[str] = []
    hung: set[int] = set()
    stuck = asyncio.Event()  # never set: handlers past the half hang, like a process about to die
    watcher = commit_watcher()

    async def until_half(rec) -> None:
        if len(done_before) >= 20:
            hung.add(rec.partition)
            await stuck.wait()
        done_before.append(rec.value.decode())

    await bus.subscribe(group_id="g", topics=[TOPIC], handler=until_half, observer=watcher)
    await eventually(lambda: len(done_before) >= 20, what="half consumed")
    # Each partition either hangs in a handler (so its previous record is committed) or has
    # reported after committing its last one; only then is "consumed" also "committed".
    watcher.mark()
    await eventually(lambda: hung | watcher.reported(TOPIC) >= {0, 1, 2}, what="commits settled")
    assert hung, "no handler was in flight when the process stopped"
    await bus.stop()  # the process goes away with handlers in flight

    reopened = await open_bus(partitions=3)
    done_after: list[str] = []

    async def collect(rec) -> None:
        done_after.append(rec.value.decode())

    await reopened.subscribe(group_id="g", topics=[TOPIC], handler=collect)
    remaining = 40 - len(done_before)
    await eventually(lambda: len(done_after) >= remaining, what="the rest after restart")

    everything = Counter(done_before) + Counter(done_after)
    assert set(everything) == {f"r{i:02d}" for i in range(40)}, "a record was lost"
    assert max(everything.values()) == 1, "a committed record was delivered again"


async def test_an_exception_mid_stream_leaves_the_position_at_the_last_committed_record(
    open_bus, record, eventually
):
    bus = await open_bus(partitions=1)
    await bus.publish([record(TOPIC, "k", f"r{i}") for i in range(10)])
    handled: list[str] = []
    crashed = asyncio.Event()

    async def dies_on_r4(rec) -> None:
        if rec.value == b"r4":
            crashed.set()
            raise Crash()
        handled.append(rec.value.decode())

    await bus.subscribe(group_id="g", topics=[TOPIC], handler=dies_on_r4)
    await eventually(crashed.is_set, what="the crash")
    assert handled == ["r0", "r1", "r2", "r3"]
    await bus.stop()

    reopened = await open_bus(partitions=1)
    resumed: list[str] = []

    async def collect(rec) -> None:
        resumed.append(rec.value.decode())

    await reopened.subscribe(group_id="g", topics=[TOPIC], handler=collect)
    await eventually(lambda: len(resumed) >= 6, what="records from the crash on")

    assert resumed == [f"r{i}" for i in range(4, 10)]


async def test_the_log_survives_a_restart_and_new_records_append_after_it(
    open_bus, record, recorder, eventually
):
    bus = await open_bus(partitions=2)
    await bus.publish([record(TOPIC, f"k{i % 3}", f"old{i}") for i in range(9)])
    before = await bus.read_all(TOPIC)
    await bus.stop()

    reopened = await open_bus(partitions=2)
    assert await reopened.read_all(TOPIC) == before
    await reopened.publish([record(TOPIC, f"k{i % 3}", f"new{i}") for i in range(6)])

    after = await reopened.read_all(TOPIC)
    assert len(after) == 15
    for partition in {r.partition for r in after}:
        offsets = [r.offset for r in after if r.partition == partition]
        assert offsets == list(range(len(offsets)))  # contiguous, nothing overwritten
    # A group that never consumed before reads the whole history, old records first per key.
    seen = recorder()
    await reopened.subscribe(group_id="newcomer", topics=[TOPIC], handler=seen)
    await eventually(lambda: len(seen.records) == 15, what="whole history")
    for key in ("k0", "k1", "k2"):
        values = [r.value.decode() for r in seen.records if r.key == key]
        assert values == sorted(values, key=lambda v: (not v.startswith("old"), int(v.lstrip("oldnew"))))


async def test_a_group_that_consumed_everything_gets_nothing_again_after_restart(
    open_bus, record, recorder, eventually, commit_watcher
):
    bus = await open_bus(partitions=3)
    await bus.publish([record(TOPIC, f"k{i}", f"r{i}") for i in range(12)])
    first = recorder()
    watcher = commit_watcher()
    await bus.subscribe(group_id="g", topics=[TOPIC], handler=first, observer=watcher)
    await eventually(lambda: len(first.records) == 12, what="everything consumed")
    watcher.mark()
    await eventually(lambda: watcher.reported(TOPIC) == {0, 1, 2}, what="every partition committed")
    await bus.stop()

    reopened = await open_bus(partitions=3)
    second = recorder()
    await reopened.subscribe(group_id="g", topics=[TOPIC], handler=second)
    await reopened.publish([record(TOPIC, "k0", "marker")])
    await eventually(lambda: len(second.records) >= 1, what="the marker")

    assert second.values == ["marker"]
