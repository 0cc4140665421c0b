"""Consumer lag of an engine's input partitions, and whether it has caught up since they were
assigned.

For each assigned topic-partition: the next offset to read (the committed offset at
assignment, then after each record read), the time the last record read was written (its
Kafka timestamp) and the partition's high watermark as the consumer last fetched it. Lag in
records is high watermark - next offset; lag in seconds is how long ago the last record read
was written while records wait (since assignment when none was read yet), 0 when none waits.

An engine has caught up once every partition was read up to the high watermark it had when
first known after assignment (a restart's backlog, say); `/readyz` waits for that, then
holds readiness back only while the lag in seconds is over `READY_MAX_LAG_SECONDS`.
The embedded broker reports high watermarks a little behind batched writes (../shared
FACTS.md), so lag is a lower bound there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka.structs import TopicPartition

from pipeline import metrics


class Fetching(Protocol):
    """What the tracker needs of an `AIOKafkaConsumer`."""

    def highwater(self, partition: TopicPartition) -> int | None: ...

    async def committed(self, partition: TopicPartition) -> int | None: ...

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]: ...


@dataclass
class _Reading:
    position: int  # next offset to read
    since: float  # wall time reading began here (epoch seconds)
    last_written: float | None = None  # Kafka timestamp of the last record read (epoch s)
    target: int | None = None  # the high watermark to reach once after assignment
    caught_up: bool = False


@dataclass(frozen=True)
class Lag:
    """An engine's lag now: `records` waiting (sum over partitions), `seconds` behind (the
    most of any partition), partitions whose high watermark is not known yet, and those not
    yet read up to the mark they had after assignment."""

    records: int = 0
    seconds: float = 0.0
    unknown: list[int] = field(default_factory=list)
    catching_up: list[int] = field(default_factory=list)


class ConsumerLag:
    """Lag of one engine's assigned input partitions; gauges labelled by `engine`."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self._reading: dict[TopicPartition, _Reading] = {}

    async def assigned(self, consumer: Fetching, tps: Iterable[TopicPartition]) -> None:
        """Reading `tps` starts at their committed offsets (their beginning when none); one
        already read from since the assignment keeps its position."""
        fresh = [tp for tp in tps if tp not in self._reading]
        if not fresh:
            return
        begins = await consumer.beginning_offsets(fresh)
        now = time.time()
        for tp in fresh:
            committed = await consumer.committed(tp)
            if tp in self._reading:  # the loop read it while we asked: that position stands
                continue
            position = begins.get(tp, 0) if committed is None else committed
            self._reading[tp] = _Reading(position=position, since=now)
            metrics.CONSUMER_COMMITTED.labels(self.engine, tp.topic, str(tp.partition)).set(
                position
            )

    def revoked(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            if self._reading.pop(tp, None) is not None:
                labels = (self.engine, tp.topic, str(tp.partition))
                for gauge in (metrics.CONSUMER_LAG, metrics.CONSUMER_LAG_SECONDS,
                              metrics.CONSUMER_COMMITTED):  # fmt: skip
                    gauge.remove(*labels)

    def keep_only(self, tps: Iterable[TopicPartition]) -> None:
        """Forget partitions not in `tps` (the new assignment)."""
        kept = set(tps)
        self.revoked([tp for tp in self._reading if tp not in kept])

    def read(self, tp: TopicPartition, next_offset: int, written_ms: int | None) -> None:
        """Records of `tp` up to `next_offset` were read; the last was written at
        `written_ms` (Kafka timestamp, epoch milliseconds)."""
        reading = self._reading.get(tp)
        if reading is None:  # read before `assigned` asked for its committed offset
            reading = self._reading[tp] = _Reading(position=next_offset, since=time.time())
        reading.position = next_offset
        if written_ms is not None and written_ms > 0:
            reading.last_written = written_ms / 1000

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._reading:
                labels = (self.engine, tp.topic, str(tp.partition))
                metrics.CONSUMER_COMMITTED.labels(*labels).set(offset)

    def measure(self, consumer: Fetching, now: float) -> Lag:
        """The lag now (`now`: epoch seconds); sets the lag gauges."""
        records, seconds = 0, 0.0
        unknown: set[int] = set()
        catching_up: set[int] = set()
        for tp, reading in self._reading.items():
            highwater = consumer.highwater(tp)
            if highwater is None:
                unknown.add(tp.partition)
                continue
            if reading.target is None:
                reading.target = highwater
            waiting = max(0, highwater - reading.position)
            if not reading.caught_up and reading.position >= reading.target:
                reading.caught_up = True
            if not reading.caught_up:
                catching_up.add(tp.partition)
            behind = 0.0
            if waiting:
                behind = max(0.0, now - (reading.last_written or reading.since))
            records += waiting
            seconds = max(seconds, behind)
            labels = (self.engine, tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(waiting)
            metrics.CONSUMER_LAG_SECONDS.labels(*labels).set(round(behind, 3))
        return Lag(records, round(seconds, 3), sorted(unknown), sorted(catching_up))
