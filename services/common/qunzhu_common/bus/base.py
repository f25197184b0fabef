"""What every bus adapter offers: keyed, partitioned topics, consumer groups, at-least-once delivery."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None


RecordHandler = Callable[[Record], Awaitable[None]]
BatchHandler = Callable[[list[Record]], Awaitable[None]]


class ConsumerObserver:
    """Hooks a subscriber gives the bus to see what it cannot see itself (for metrics)."""

    def lag(self, topic: str, partition: int, lag: int) -> None:
        """Records behind the head of the partition after the last commit."""

    def dead_lettered(self, record: Record, error: BaseException) -> None:
        """The record was copied to its dead-letter topic and skipped."""


class Subscription(abc.ABC):
    """A running consumer of one group; stopping it leaves uncommitted records for the next owner."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


class Bus(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, records: list[OutgoingRecord]) -> None:
        """Durably append all records (in order per key) or raise; nothing is acknowledged half-way."""

    @abc.abstractmethod
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
        """Deliver every record of `topics` to one member of `group_id`, in order per partition.

        The handler's success advances the group's position; its failure is retried and the
        record finally dead-lettered (see `qunzhu_common.bus.delivery`). With a `batch_handler`,
        up to `batch_size` consecutive records of a partition are first tried together.
        """

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise when the bus cannot be reached."""
