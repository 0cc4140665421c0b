"""What the scoring and room engines share: a batch loop that checkpoints on a timer (each
checkpoint an `agents.checkpoint.Checkpoint`) and a stop that checkpoints last."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from mode import Service

from agents.lag import ConsumerLag
from pipeline import metrics
from pipeline.settings import Settings
from pipeline.worker_status import CheckpointWatch

log = logging.getLogger(__name__)


class BatchEngine(Service):
    """Subclasses start `consumer`, `producer` and `reader` in `on_start` (then call
    `start_loop`) and implement `process` and `_checkpoint`."""

    name_of_loop = "engine"

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._lock = asyncio.Lock()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_checkpoint = 0.0
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.reader: AIOKafkaConsumer | None = None
        # When checkpoints last completed, and whether records wait for one (stalled).
        self.checkpoint_watch = CheckpointWatch(
            self.name_of_loop, settings.checkpoint_stall_seconds, time.monotonic()
        )
        self.lag = ConsumerLag(self.name_of_loop)
        self.restoring = False  # rebuilding assigned partitions' state
        self.joined = False  # a first assignment came: the engine is in its consumer group

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        raise NotImplementedError

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        raise NotImplementedError

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """The consumer's rebalance listener: the engine's `revoked`, then lag forgets them."""
        await self.revoked(revoked)
        self.lag.revoked(revoked)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """The consumer's rebalance listener: the engine restores the partitions' state
        (`restoring` meanwhile), then their lag is measured from their committed offsets."""
        self.restoring = True
        metrics.RESTORING.labels(self.name_of_loop).set(1)
        try:
            await self.assigned(assigned)
            # Restored only once their lag is known: a report between the two would say
            # caught up with nothing measured.
            self.lag.keep_only(assigned)
            assert self.consumer is not None
            await self.lag.assigned(self.consumer, assigned)
        finally:
            self.restoring = False
            metrics.RESTORING.labels(self.name_of_loop).set(0)
        self.joined = True

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        raise NotImplementedError

    async def _checkpoint(self) -> None:
        raise NotImplementedError

    def owned_partitions(self) -> list[int]:
        """The partitions of its input this engine owns now (for the worker's reports)."""
        return []

    def checkpoint_completed(self, began: float) -> None:
        """Called by the engine once a checkpoint whose snapshot was taken at `began`
        (monotonic) made it durable and committed its offsets."""
        now = time.monotonic()
        metrics.CHECKPOINT_SECONDS.labels(self.name_of_loop).observe(max(0.0, now - began))
        self.checkpoint_watch.completed(began, now, time.time())

    def fetch_timeout_ms(self) -> int:
        """How long a fetch may wait for records before the loop goes round anyway."""
        return 100

    async def _periodic_checkpoint(self) -> None:
        """The checkpoint on the timer; an engine may finish it in the background."""
        await self._checkpoint()

    def start_loop(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name_of_loop)

    async def on_stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await self._task
            except Exception:
                log.exception("the %s loop had failed", self.name_of_loop)
        try:
            if self.producer is not None and self.consumer is not None:
                async with self._lock:
                    await self._checkpoint()
        finally:
            for client in (self.consumer, self.reader, self.producer):
                if client is not None:
                    await client.stop()

    async def _run(self) -> None:
        assert self.consumer is not None
        try:
            while not self._stopping:
                batches: dict[TopicPartition, list[Any]] = await self.consumer.getmany(
                    timeout_ms=self.fetch_timeout_ms(), max_records=self.settings.batch_max_records
                )
                async with self._lock:
                    if batches:  # owed to the next checkpoint that begins after this
                        self.checkpoint_watch.received(time.monotonic())
                    await self.process(batches)
                    for tp, records in batches.items():  # read once processed
                        if records:
                            last = records[-1]
                            self.lag.read(tp, last.offset + 1, last.timestamp)
                    if time.monotonic() >= self._next_checkpoint:
                        await self._periodic_checkpoint()
        except Exception as exc:
            log.exception("the %s loop failed; the worker stops", self.name_of_loop)
            await self.crash(exc)
