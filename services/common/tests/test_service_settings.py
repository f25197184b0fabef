"""Service settings reach the parts they configure."""

from __future__ import annotations

from qunzhu_common.service import build_bus
from qunzhu_common.settings import ServiceSettings


def test_kafka_topics_are_created_with_the_configured_replication_and_partitions(tmp_path, monkeypatch):
    monkeypatch.setenv("QUNZHU_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("QUNZHU_TOPIC_PARTITIONS", "12")
    bus = build_bus(ServiceSettings(data_dir=tmp_path, bus="kafka"))
    assert (bus._replication_factor, bus._partitions) == (3, 12)  # type: ignore[attr-defined]


def test_replication_defaults_to_one_for_a_single_broker(tmp_path):
    assert ServiceSettings(data_dir=tmp_path).topic_replication_factor == 1
