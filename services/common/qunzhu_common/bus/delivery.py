"""Retry and dead-letter policy shared by both bus adapters.

A record is retried with backoff when its handler fails; after `max_attempts` (or at once when the
record itself is invalid) it is copied to `<topic>.dlq` with the error in its headers, and the
partition moves on: a poison record never blocks the records behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qunzhu_common.bus.base import BatchHandler, OutgoingRecord, Record, RecordHandler
from qunzhu_common.db.transient import is_transient
from qunzhu_common.events.registry import InvalidEvent
from qunzhu_common.events.topics import dlq_topic, is_dlq

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))


def dead_letter_record(record: Record, *, group_id: str, error: BaseException, attempts: int) -> OutgoingRecord:
    headers = tuple(h for h in record.headers if not h[0].startswith("x-dlq-")) + (
        ("x-dlq-original-topic", record.topic.encode()),
        ("x-dlq-original-partition", str(record.partition).encode()),
        ("x-dlq-original-offset", str(record.offset).encode()),
        ("x-dlq-consumer-group", group_id.encode()),
        ("x-dlq-attempts", str(attempts).encode()),
        ("x-dlq-error-type", type(error).__name__.encode()),
        ("x-dlq-error", str(error)[:2000].encode()),
    )
    return OutgoingRecord(
        topic=dlq_topic(record.topic), key=record.key or "", value=record.value, headers=headers
    )


async def deliver(
    record: Record,
    handler: RecordHandler,
    *,
    group_id: str,
    policy: RetryPolicy,
    publish_dead_letter: Callable[[OutgoingRecord], Awaitable[None]],
    on_dead_letter: Callable[[Record, BaseException], None] | None = None,
) -> None:
    """Run the handler until it succeeds or the record is dead-lettered; never raises for the record.

    Raises only asyncio.CancelledError (shutdown) or the error of the DLQ publish itself, in which case
    the caller must not advance its position.
    """
    attempt = outage = 0
    while True:
        attempt += 1
        try:
            await handler(record)
            return
        except asyncio.CancelledError:
            raise
        except InvalidEvent as exc:
            error: BaseException = exc
            log.warning("invalid record %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
            break
        except Exception as exc:  # the handler's own failure: retry, then dead-letter
            error = exc
            if is_transient(exc):
                # The database or the network is down (a restart, a failover), not the record: wait for it
                # however long it takes; dead-lettering would lose a good record's effect.
                attempt, outage = attempt - 1, outage + 1
                log.warning("record %s[%d]@%d waits for the database (%d): %r",
                            record.topic, record.partition, record.offset, outage, exc)
                await asyncio.sleep(policy.backoff(min(outage, 16)))
                continue
            if attempt >= policy.max_attempts:
                log.error(
                    "record %s[%d]@%d failed %d times, dead-lettering: %r",
                    record.topic, record.partition, record.offset, attempt, exc,
                )
                break
            log.warning(
                "record %s[%d]@%d failed (attempt %d/%d): %r",
                record.topic, record.partition, record.offset, attempt, policy.max_attempts, exc,
            )
            await asyncio.sleep(policy.backoff(attempt))
    if is_dlq(record.topic):
        # A dead-letter consumer that fails must not grow `.dlq.dlq` chains.
        log.error("dropping failed record from dead-letter topic %s@%d", record.topic, record.offset)
        return
    await publish_dead_letter(dead_letter_record(record, group_id=group_id, error=error, attempts=attempt))
    if on_dead_letter:
        on_dead_letter(record, error)


async def deliver_all(
    records: list[Record],
    handler: RecordHandler,
    *,
    batch_handler: BatchHandler | None,
    batch_size: int,
    group_id: str,
    policy: RetryPolicy,
    publish_dead_letter: Callable[[OutgoingRecord], Awaitable[None]],
    on_dead_letter: Callable[[Record, BaseException], None] | None = None,
    on_settled: Callable[[Record], Awaitable[None]] | None = None,
) -> None:
    """Settle records of one partition in order: in batches when a batch handler is given, falling
    back to one-by-one delivery (retries, dead letters) for any batch that fails as a whole.

    `on_settled` is awaited after each batch (with its last record) or record: where the caller
    advances its position. Raises only what `deliver` raises.
    """
    size = batch_size if batch_handler is not None else 1
    for start in range(0, len(records), max(1, size)):
        chunk = records[start : start + max(1, size)]
        if batch_handler is not None and len(chunk) > 1:
            try:
                await batch_handler(chunk)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad record spoils the batch: settle each on its own
                log.info("batch of %d from %s[%d] failed (%r); delivering one by one",
                         len(chunk), chunk[0].topic, chunk[0].partition, exc)
            else:
                if on_settled is not None:
                    await on_settled(chunk[-1])
                continue
        for record in chunk:
            await deliver(
                record, handler, group_id=group_id, policy=policy,
                publish_dead_letter=publish_dead_letter, on_dead_letter=on_dead_letter,
            )
            if on_settled is not None:
                await on_settled(record)
