"""Apache Kafka adapter (aiokafka): acks=all idempotent producer, manual per-partition commits.

A partition's offset is committed only after the handler returned for every record up to it, i.e.
after each handler's database transaction committed; a rebalance waits for the batch in hand to
finish, so a revoked partition is never committed past what was really processed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from qunzhu_common.bus.base import (
    BatchHandler,
    Bus,
    ConsumerObserver,
    OutgoingRecord,
    Record,
    RecordHandler,
    Subscription,
)
from qunzhu_common.bus.delivery import RetryPolicy, deliver_all

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
# Bytes a producer batch of one partition may hold (aiokafka's default: 16 KiB). The relay publishes a
# claimed batch (500 rows, ≈350 KB) and waits for every acknowledgement before it marks the rows; the
# producer keeps one request in flight per broker carrying one batch per partition, so with 16 KiB
# batches a relay pass took ≈8 sequential round trips, with 256 KiB one. Well under the broker's
# default message.max.bytes (1 MiB).
PRODUCER_MAX_BATCH_BYTES = 256 * 1024


class KeyHashingPartitioner:
    """aiokafka's DefaultPartitioner (murmur2 of the key, as every Kafka client, so a key keeps its
    partition whoever produces it) with each key's hash remembered: murmur2 is pure Python in aiokafka
    (≈3 % of the bus path's samples), and keys — community and group ids — repeat."""

    def __init__(self, max_keys: int = 65536) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return DefaultPartitioner()(key, all_partitions, available)  # random, as the default does
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class KafkaBus(Bus):
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topics: Iterable[str] = (),
        partitions: int = 3,
        replication_factor: int = 1,
        policy: RetryPolicy | None = None,
        client_id: str = "qunzhu",
        request_timeout_ms: int = 15000,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._declared_topics = list(topics)
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._policy = policy or RetryPolicy()
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._known_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._subscriptions: set[_KafkaSubscription] = set()

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap

    async def start(self) -> None:
        if self._producer is not None:
            return
        await self.ensure_topics(self._declared_topics)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{self._client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=PRODUCER_MAX_BATCH_BYTES,
            partitioner=KeyHashingPartitioner(),
            request_timeout_ms=self._request_timeout_ms,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        for sub in list(self._subscriptions):
            await sub.stop()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ping(self) -> None:
        if self._producer is None:
            raise RuntimeError("kafka bus is not started")
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=5)

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create missing topics with the configured partitions (and their dead-letter topics)."""
        from qunzhu_common.events.topics import dlq_topic, is_dlq

        wanted = set()
        for topic in topics:
            wanted.add(topic)
            if not is_dlq(topic):
                wanted.add(dlq_topic(topic))
        missing = wanted - self._known_topics
        if not missing:
            return
        async with self._topic_lock:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-admin",
                request_timeout_ms=self._request_timeout_ms,
            )
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                to_create = sorted(missing - existing)
                if to_create:
                    response = await admin.create_topics(
                        [NewTopic(name, self._partitions, self._replication_factor) for name in to_create]
                    )
                    for topic_error in getattr(response, "topic_errors", []):
                        name, code = topic_error[0], topic_error[1]
                        if code not in (0, _TOPIC_ALREADY_EXISTS):
                            raise KafkaError(f"cannot create topic {name}: error code {code}")
                    await self._wait_for_metadata(admin, set(to_create))
            finally:
                await admin.close()
            self._known_topics |= wanted

    @staticmethod
    async def _wait_for_metadata(admin: AIOKafkaAdminClient, topics: set[str]) -> None:
        for _ in range(100):
            if topics <= set(await admin.list_topics()):
                return
            await asyncio.sleep(0.1)
        raise KafkaError(f"topics {sorted(topics)} were created but never appeared in metadata")

    async def publish(self, records: list[OutgoingRecord]) -> None:
        if not records:
            return
        if self._producer is None:
            raise RuntimeError("kafka bus is not started")
        await self.ensure_topics({r.topic for r in records})
        # Queue everything first so the producer batches, then wait for every acknowledgement:
        # the caller marks its outbox rows published only when all of them are durable.
        pending = [
            await self._producer.send(
                r.topic, r.value, key=r.key.encode(), headers=list(r.headers) or None
            )
            for r in records
        ]
        await asyncio.gather(*pending)

    async def subscribe(
        self,
        *,
        group_id: str,
        topics: list[str],
        handler: RecordHandler,
        observer: ConsumerObserver | None = None,
        batch_handler: BatchHandler | None = None,
        batch_size: int = 1,
    ) -> Subscription:
        await self.ensure_topics(topics)
        subscription = _KafkaSubscription(self, group_id, topics, handler, observer or ConsumerObserver())
        subscription.batch_handler, subscription.batch_size = batch_handler, batch_size
        await subscription.start()
        self._subscriptions.add(subscription)
        return subscription


FETCH_RECORDS = 500  # records per fetch at least (a one-by-one consumer commits its offsets once per fetch)


class _RebalanceListener(ConsumerRebalanceListener):
    def __init__(self, subscription: _KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait until the batch in hand is processed and committed before giving partitions away.
        async with self._subscription.batch_lock:
            log.info("group %s: partitions revoked %s", self._subscription.group_id, sorted(map(str, revoked)))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("group %s: partitions assigned %s", self._subscription.group_id, sorted(map(str, assigned)))


class _KafkaSubscription(Subscription):
    def __init__(
        self,
        bus: KafkaBus,
        group_id: str,
        topics: list[str],
        handler: RecordHandler,
        observer: ConsumerObserver,
    ) -> None:
        self.bus = bus
        self.group_id = group_id
        self.topics = topics
        self.handler = handler
        self.observer = observer
        self.batch_handler: BatchHandler | None = None
        self.batch_size = 1
        self.batch_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bus.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{self.bus._client_id}-{self.group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            request_timeout_ms=self.bus._request_timeout_ms + 25000,
        )
        consumer.subscribe(self.topics, listener=_RebalanceListener(self))
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name=f"kafka-consumer:{self.group_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        self.bus._subscriptions.discard(self)

    async def _publish_dead_letter(self, record: OutgoingRecord) -> None:
        await self.bus.publish([record])

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=self._fetch_records())
            except KafkaError as exc:
                log.warning("group %s: fetch failed: %r", self.group_id, exc)
                await asyncio.sleep(1)
                continue
            if not batches:
                continue
            async with self.batch_lock:
                settled = await asyncio.gather(
                    *(self._process_partition(tp, msgs) for tp, msgs in batches.items()))
                await self._commit({tp: offset for tp, offset in zip(batches, settled, strict=True)
                                    if offset is not None})

    def _fetch_records(self) -> int:
        """Up to a full batch from every assigned partition (#19 part 6): capped at 500 across partitions, a
        batch consumer's batches held ≈170 records with three partitions busy, each paying a transaction's
        fixed cost (15–20 ms when scoring) for a third of what it could apply."""
        assert self._consumer is not None
        return max(FETCH_RECORDS, self.batch_size * len(self._consumer.assignment()))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """One OffsetCommit for every partition settled in this fetch (not one request per partition)."""
        if not offsets:
            return
        assert self._consumer is not None
        consumer = self._consumer
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # A partition moved to another member: it redelivers from the last commit and the inbox
            # turns the repeats into no-ops.
            log.warning("group %s: commit of %s failed: %r", self.group_id,
                        {str(tp): offset for tp, offset in offsets.items()}, exc)
            return
        for tp, next_offset in offsets.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.observer.lag(tp.topic, tp.partition, max(0, highwater - next_offset))

    async def _process_partition(self, tp: TopicPartition, messages: list) -> int | None:
        """Settle a partition's fetched records; returns the offset to commit (None: nothing settled)."""
        assert self._consumer is not None
        consumer = self._consumer
        records = [
            Record(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key.decode() if message.key is not None else None,
                value=message.value,
                headers=tuple(message.headers) if message.headers else (),
            )
            for message in messages
        ]
        next_offset: int | None = None

        async def settled(record: Record) -> None:
            nonlocal next_offset
            next_offset = record.offset + 1

        try:
            await deliver_all(
                records,
                self.handler,
                batch_handler=self.batch_handler,
                batch_size=self.batch_size,
                group_id=self.group_id,
                policy=self.bus._policy,
                publish_dead_letter=self._publish_dead_letter,
                on_dead_letter=self.observer.dead_lettered,
                on_settled=settled,
            )
        except Exception as exc:
            # Only the dead-letter publish itself can fail here (broker unreachable): fetch the
            # unsettled records again later rather than skipping them.
            retry_from = next_offset if next_offset is not None else records[0].offset
            log.error("group %s: cannot settle %s@%d, retrying: %r", self.group_id, tp, retry_from, exc)
            consumer.seek(tp, retry_from)
            await asyncio.sleep(1)
        return next_offset
