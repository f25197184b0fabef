"""The message bus: one interface, an in-process durable adapter and a Kafka adapter."""

from qunzhu_common.bus.base import Bus, ConsumerObserver, OutgoingRecord, Record, RecordHandler, Subscription

__all__ = ["Bus", "ConsumerObserver", "OutgoingRecord", "Record", "RecordHandler", "Subscription"]
