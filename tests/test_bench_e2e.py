"""bench/e2e.py's scale-out helpers (no stack started): which partition a community's events take, and how a
layout's rate is split over a service's processes for the sizing figure."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from bench import e2e


def test_a_community_lands_where_the_bus_producer_puts_its_key() -> None:
    # KafkaBus sends key=community_id.encode() through aiokafka's default (murmur2) partitioner.
    ids = [f"c-{i:04d}" for i in range(200)]
    every = [0, 1, 2, 3]
    assert [e2e.partition_of(c, 4) for c in ids] == [DefaultPartitioner()(c.encode(), every, every) for c in ids]
    assert {e2e.partition_of(c, 4) for c in ids} == set(every)  # 200 ids cover 4 partitions


def test_the_rate_is_split_over_a_services_processes() -> None:
    load = {"achieved_per_s": 200.0, "process_cpu": {"gateway": 0.1, "gateway-2": 0.2, "engagement": 0.1,
                                                     "membership": 0.01, "bench": 0.5, "kafka": 0.3}}
    per = e2e.per_cpu_second(load, {"gateway", "gateway-2", "engagement", "membership"})
    # Each of the two gateways carried half; membership below 2 % of a CPU is too small to divide by;
    # the bench, Kafka and PostgreSQL are not service processes.
    assert per == {"gateway": 1000.0, "gateway-2": 500.0, "engagement": 2000.0}
