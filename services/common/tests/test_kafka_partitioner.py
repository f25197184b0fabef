"""The Kafka producer's partitioner: a key lands where aiokafka's (and Java's) default puts it."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from qunzhu_common.bus.kafka import KeyHashingPartitioner


def test_every_key_gets_the_default_partitioners_partition_first_time_and_remembered():
    ours, default = KeyHashingPartitioner(max_keys=50), DefaultPartitioner()
    keys = [str(uuid.uuid4()).encode() for _ in range(200)] + [b"", "社群-1".encode(), b"wecom:g1"]
    for partitions in ([0, 1, 2], list(range(12))):
        for _ in range(2):  # the second round is answered from memory (or recomputed after a clear)
            for key in keys:
                assert ours(key, partitions, partitions) == default(key, partitions, partitions)


def test_no_key_is_spread_over_the_available_partitions():
    ours = KeyHashingPartitioner()
    assert {ours(None, [0, 1, 2], [1]) for _ in range(20)} == {1}
