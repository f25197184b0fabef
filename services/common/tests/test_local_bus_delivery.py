"""LocalBus delivery semantics: order per key, consumer groups, each record once per group."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

TOPIC = "orders.v1"


def _interleaved(record, keys: int = 7, per_key: int = 15) -> list:
    """Records of many keys, interleaved: value "<key>:<n>" with n counting per key."""
    out = []
    for n in range(per_key):
        for k in range(keys):
            out.append(record(TOPIC, f"key-{k}", f"key-{k}:{n}"))
    return out


async def _publish_in_random_batches(bus, records, seed: int = 7) -> None:
    rng = random.Random(seed)
    i = 0
    while i < len(records):
        size = rng.randint(1, 9)
        await bus.publish(records[i : i + size])
        i += size


async def test_records_of_one_key_arrive_in_publish_order(open_bus, record, recorder, eventually):
    bus = await open_bus(partitions=3)
    records = _interleaved(record)
    seen = recorder()
    await bus.subscribe(group_id="g", topics=[TOPIC], handler=seen)

    await _publish_in_random_batches(bus, records)
    await eventually(lambda: len(seen.records) >= len(records), what="all records consumed")

    by_key: dict[str, list[int]] = defaultdict(list)
    for value in seen.values:
        key, n = value.split(":")
        by_key[key].append(int(n))
    assert set(by_key) == {f"key-{k}" for k in range(7)}
    for key, numbers in by_key.items():
        assert numbers == list(range(15)), f"{key} delivered out of order: {numbers}"
    # Keys really were spread over partitions, yet every key kept to exactly one of them.
    partitions_of_key = defaultdict(set)
    for rec in seen.records:
        partitions_of_key[rec.key].add(rec.partition)
    assert all(len(parts) == 1 for parts in partitions_of_key.values())
    assert len({rec.partition for rec in seen.records}) > 1


async def test_read_all_returns_what_was_published_with_headers(open_bus, record):
    bus = await open_bus(partitions=2)
    await bus.publish([record(TOPIC, "k", "v1", trace="abc"), record(TOPIC, "k", "v2")])

    stored = await bus.read_all(TOPIC)

    assert [r.value for r in stored] == [b"v1", b"v2"]
    assert [r.offset for r in stored] == [0, 1]
    assert stored[0].header("trace") == "abc"
    assert stored[1].header("trace") is None


async def test_each_consumer_group_gets_every_record_once(open_bus, record, recorder, eventually):
    bus = await open_bus(partitions=3)
    records = _interleaved(record, keys=5, per_key=10)
    billing, analytics = recorder(), recorder()
    await bus.subscribe(group_id="billing", topics=[TOPIC], handler=billing)
    await bus.subscribe(group_id="analytics", topics=[TOPIC], handler=analytics)

    await _publish_in_random_batches(bus, records)
    expected = Counter(r.value.decode() for r in records)
    for group in (billing, analytics):
        await eventually(lambda g=group: len(g.records) >= len(records), what="both groups consumed")

    assert Counter(billing.values) == expected
    assert Counter(analytics.values) == expected


async def test_a_group_handles_each_record_once(open_bus, record, recorder, eventually, commit_watcher):
    bus = await open_bus(partitions=3)
    first = recorder()
    watcher = commit_watcher()
    subscription = await bus.subscribe(group_id="g", topics=[TOPIC], handler=first, observer=watcher)

    # A second member of the same group on the same topic would double-process: refused.
    with pytest.raises(ValueError, match="already consumes"):
        await bus.subscribe(group_id="g", topics=[TOPIC], handler=recorder())

    await bus.publish([record(TOPIC, f"k{i}", f"r{i}") for i in range(20)])
    await eventually(lambda: len(first.records) == 20, what="first batch consumed")
    watcher.mark()
    await eventually(lambda: watcher.reported(TOPIC) == {0, 1, 2}, what="first batch committed")
    await subscription.stop()

    # The group comes back (same bus): it resumes after what it already handled.
    second = recorder()
    await bus.subscribe(group_id="g", topics=[TOPIC], handler=second)
    await bus.publish([record(TOPIC, f"k{i}", f"s{i}") for i in range(10)])
    await eventually(lambda: len(second.records) == 10, what="second batch consumed")

    assert sorted(second.values) == sorted(f"s{i}" for i in range(10))
    all_values = first.values + second.values
    assert len(all_values) == len(set(all_values)) == 30


async def test_subscriber_sees_records_published_before_it_subscribed(open_bus, record, recorder, eventually):
    bus = await open_bus(partitions=2)
    await bus.publish([record(TOPIC, "k", f"early-{i}") for i in range(5)])

    late = recorder()
    await bus.subscribe(group_id="late", topics=[TOPIC], handler=late)
    await bus.publish([record(TOPIC, "k", "after")])
    await eventually(lambda: len(late.records) == 6, what="backlog and new record")

    assert late.values == [f"early-{i}" for i in range(5)] + ["after"]
