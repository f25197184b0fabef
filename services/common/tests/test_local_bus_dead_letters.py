"""LocalBus retries and dead letters: failures are retried, poison goes to `<topic>.dlq` and never blocks."""

from __future__ import annotations

from collections import Counter

from qunzhu_common.bus.delivery import RetryPolicy
from qunzhu_common.events.registry import InvalidEvent

TOPIC = "work.v1"
DLQ = "work.v1.dlq"


async def test_failing_twice_then_succeeding_is_retried_and_processed_once(open_bus, record, eventually):
    bus = await open_bus(policy=RetryPolicy(max_attempts=5, initial_backoff_s=0.001, max_backoff_s=0.005))
    attempts: Counter[str] = Counter()
    processed: list[str] = []

    async def flaky(rec) -> None:
        value = rec.value.decode()
        attempts[value] += 1
        if value == "flaky" and attempts[value] <= 2:
            raise ConnectionError("database briefly unreachable")
        processed.append(value)

    await bus.subscribe(group_id="g", topics=[TOPIC], handler=flaky)
    await bus.publish(
        [record(TOPIC, "k", "before"), record(TOPIC, "k", "flaky"), record(TOPIC, "k", "after")]
    )
    await eventually(lambda: len(processed) == 3, what="all three processed")

    assert processed == ["before", "flaky", "after"]
    assert attempts["flaky"] == 3
    assert attempts["before"] == attempts["after"] == 1
    assert await bus.read_all(DLQ) == []


async def test_poison_is_dead_lettered_after_max_attempts_and_does_not_block(open_bus, record, eventually):
    bus = await open_bus(partitions=3)  # FAST_POLICY: max_attempts=3
    attempts: Counter[str] = Counter()
    processed: list[str] = []

    async def handler(rec) -> None:
        value = rec.value.decode()
        attempts[value] += 1
        if value == "poison":
            raise RuntimeError("cannot handle poison")
        processed.append(value)

    await bus.subscribe(group_id="workers", topics=[TOPIC], handler=handler)
    # Same key: the poison and the records behind it share one partition.
    await bus.publish(
        [record(TOPIC, "k", "first"), record(TOPIC, "k", "poison", origin="test")]
        + [record(TOPIC, "k", f"behind-{i}") for i in range(5)]
    )
    await eventually(lambda: len(processed) == 6, what="records behind the poison")

    assert processed == ["first"] + [f"behind-{i}" for i in range(5)]
    assert attempts["poison"] == 3
    original = next(r for r in await bus.read_all(TOPIC) if r.value == b"poison")
    await eventually(lambda: _has_records(bus, DLQ), what="dead letter")
    (dead,) = await bus.read_all(DLQ)
    assert dead.value == b"poison"
    assert dead.key == "k"
    assert dead.header("origin") == "test"  # the original headers travel with it
    assert dead.header("x-dlq-original-topic") == TOPIC
    assert dead.header("x-dlq-original-partition") == str(original.partition)
    assert dead.header("x-dlq-original-offset") == str(original.offset)
    assert dead.header("x-dlq-consumer-group") == "workers"
    assert dead.header("x-dlq-attempts") == "3"
    assert dead.header("x-dlq-error-type") == "RuntimeError"
    assert "cannot handle poison" in dead.header("x-dlq-error")


async def test_invalid_event_is_dead_lettered_at_once(open_bus, record, eventually):
    bus = await open_bus(policy=RetryPolicy(max_attempts=5, initial_backoff_s=0.001, max_backoff_s=0.005))
    attempts: Counter[str] = Counter()
    processed: list[str] = []

    async def handler(rec) -> None:
        value = rec.value.decode()
        attempts[value] += 1
        if value == "garbage":
            raise InvalidEvent("not an event")
        processed.append(value)

    await bus.subscribe(group_id="g", topics=[TOPIC], handler=handler)
    await bus.publish([record(TOPIC, "k", "garbage"), record(TOPIC, "k", "good")])
    await eventually(lambda: processed == ["good"], what="good record after the invalid one")
    await eventually(lambda: _has_records(bus, DLQ), what="dead letter")

    assert attempts["garbage"] == 1  # retrying cannot fix an invalid record
    (dead,) = await bus.read_all(DLQ)
    assert dead.value == b"garbage"
    assert dead.header("x-dlq-attempts") == "1"
    assert dead.header("x-dlq-error-type") == "InvalidEvent"
    assert dead.header("x-dlq-error") == "not an event"


async def test_dead_letters_are_counted_by_the_observer(open_bus, record, eventually):
    from qunzhu_common.metrics import ServiceMetrics

    bus = await open_bus()
    metrics = ServiceMetrics("buscheck")

    async def always_fails(rec) -> None:
        raise RuntimeError("boom")

    await bus.subscribe(group_id="g", topics=[TOPIC], handler=always_fails, observer=metrics)
    await bus.publish([record(TOPIC, "a", "x"), record(TOPIC, "b", "y")])

    def dlq_count() -> float:
        return metrics.registry.get_sample_value("qunzhu_buscheck_dlq_records_total", {"topic": TOPIC}) or 0

    await eventually(lambda: dlq_count() == 2, what="two dead letters counted")
    assert sorted(r.value for r in await bus.read_all(DLQ)) == [b"x", b"y"]


async def test_a_failing_dead_letter_consumer_does_not_grow_dlq_chains(open_bus, record, eventually):
    bus = await open_bus()
    attempts: list[bytes] = []

    async def always_fails(rec) -> None:
        attempts.append(rec.value)
        raise RuntimeError("ops tool broken")

    await bus.subscribe(group_id="ops", topics=[DLQ], handler=always_fails)
    await bus.publish([record(DLQ, "k", "dead"), record(DLQ, "k", "dead-2")])
    await eventually(lambda: attempts.count(b"dead-2") == 3, what="second dead letter tried")

    assert attempts.count(b"dead") == 3
    assert await bus.read_all(DLQ + ".dlq") == []


async def _has_records(bus, topic: str) -> bool:
    return bool(await bus.read_all(topic))
