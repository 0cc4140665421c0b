"""In-memory views of compacted topics: the latest document per key (scores, models)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.settings import Settings

log = logging.getLogger(__name__)


class CompactedView:
    """Reads every partition of a compacted topic from the beginning and keeps reading.

    `ready` turns true once the view has caught up with the end offsets seen at start, so a
    restarted service never answers from a half-loaded view.
    """

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.documents: dict[str, bytes] = {}
        self.ready = False
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._targets: dict[TopicPartition, int] = {}
        self.positions: dict[int, int] = {}  # per partition, the next offset to apply
        self.changed = asyncio.Event()  # set (and replaced) whenever records were applied
        self.loaded = asyncio.Event()  # set once `ready`

    def on_record(self, key: str, value: bytes | None) -> None:
        """Called for every record applied (None: a tombstone); subclasses index them."""

    def read_past(self, partition: int, offset: int) -> bool:
        """Whether the record at `offset` of `partition` has been applied."""
        return self.positions.get(partition, 0) > offset

    def get(self, user_id: str) -> bytes | None:
        return self.documents.get(user_id)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scores-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return [TopicPartition(self.topic, p) for p in sorted(partitions)]
            log.warning("topic %s not found yet; retrying", self.topic)
            await asyncio.sleep(1.0)

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
        )
        self._consumer = consumer
        await consumer.start()
        partitions = await self._assign(consumer)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._targets = dict(await consumer.end_offsets(partitions))
        await self._check_ready(consumer)
        while True:
            # Loading, big batches; once ready, small ones: a batch is applied without
            # yielding, and requests wait behind it.
            limit = 5000 if not self.ready else 200
            batches = await consumer.getmany(timeout_ms=200, max_records=limit)
            for tp, records in batches.items():
                if records:
                    self.positions[tp.partition] = records[-1].offset + 1
                for record in records:
                    if record.key is None:
                        continue
                    user_id = record.key.decode()
                    if record.value is None:
                        self.documents.pop(user_id, None)
                        self.on_record(user_id, None)
                    else:
                        self.documents[user_id] = record.value
                        self.on_record(user_id, record.value)
            if batches:
                self.changed.set()
                self.changed = asyncio.Event()
            if not self.ready:
                await self._check_ready(consumer)

    async def _check_ready(self, consumer: AIOKafkaConsumer) -> None:
        for tp, end in self._targets.items():
            if await consumer.position(tp) < end:
                return
        self.ready = True
        self.loaded.set()
