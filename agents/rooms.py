"""The room engine: room rules on live comments re-keyed by room.

Input events are keyed by user, so one room's comments arrive on every partition. The scoring
engine sends each applied comment (with its sentiment) to `{app_id}-room-comments`, keyed by
room; this engine consumes that topic in its own consumer group, so each room's comments meet
in one place whichever worker scored them.

Rooms are kept in memory while their partition is assigned here and in a compacted changelog.
A checkpoint, every `COMMIT_INTERVAL_SECONDS` and before partitions move, waits for the fired
triggers on `lifecycle-triggers`, writes the sink's rows (the rows the store refuses to
dead-letters), writes each changed room once to the changelog, and only then commits the
comment offsets. A crash replays comments since the last commit onto the rooms as they were
then, so the same triggers fire with the same ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from agents.engine import BatchEngine
from agents.refused import dead_letter_refused
from pipeline import metrics
from pipeline.domain.rooms import RoomWindow
from pipeline.domain.triggers import Rule
from pipeline.settings import Settings
from pipeline.user_triggers import encode_trigger, trigger_row
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, engine: RoomEngine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.engine.revoked()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.engine.assigned({tp.partition for tp in assigned})


class RoomEngine(BatchEngine):
    """Keeps each owned room's comment window and fires the room rules."""

    name_of_loop = "rooms"

    def __init__(
        self,
        settings: Settings,
        rules: tuple[Rule, ...],
        sink: BatchingSink,
        flush_sink: Callable[[], Awaitable[bool]],
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, **kwargs)
        self.rules = rules
        self.sink = sink
        self.flush_sink = flush_sink
        self.lateness_ms = int(settings.room_comment_lateness_seconds * 1000)
        self.rooms: dict[int, dict[str, RoomWindow]] = {}
        self.dirty: dict[int, set[str]] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}

    async def on_start(self) -> None:
        bootstrap = self.settings.kafka_bootstrap
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await self.producer.start()
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await self.reader.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{self.settings.app_id}-rooms",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            fetch_max_wait_ms=20,
        )
        self.consumer.subscribe([self.settings.room_comments_topic], listener=_Rebalance(self))
        await self.consumer.start()
        self.start_loop()

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        assert self.producer is not None
        now = datetime.now(tz=UTC)
        # Triggers act on the present: a room's alert about comments of the past (a backfill,
        # a replay) tells no host anything.
        present_from = now.timestamp() * 1000 - self.settings.trigger_max_age_seconds * 1000
        for tp, records in batches.items():
            rooms = self.rooms.get(tp.partition)
            if rooms is None:
                continue  # not ours (any more)
            for record in records:
                self.positions[tp] = record.offset + 1
                try:
                    comment = orjson.loads(record.value or b"")
                    room_id = str(comment["room_id"])
                    event_id = str(comment["event_id"])
                    ts_ms = int(comment["ts_ms"])
                    negative = bool(comment["negative"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    # Written by the scoring engine only; say so and go on.
                    log.error("unreadable room comment at %s:%d", tp, record.offset)
                    metrics.ROOM_COMMENTS.labels("unreadable").inc()
                    continue
                room = rooms.get(room_id)
                if room is None:
                    room = rooms[room_id] = RoomWindow(room_id)
                status, fired = room.add(event_id, ts_ms, negative, self.rules, self.lateness_ms)
                metrics.ROOM_COMMENTS.labels(status).inc()
                if status == "counted":
                    self.dirty.setdefault(tp.partition, set()).add(room_id)
                for trigger in fired:
                    if trigger.at_ms < present_from:
                        continue
                    metrics.TRIGGERS.labels(trigger.rule).inc()
                    self.sink.add("triggers", trigger_row(trigger, now))
                    self._sends.append(
                        await self.producer.send(
                            self.settings.topic_triggers,
                            key=room_id.encode(),
                            value=encode_trigger(trigger, now),
                        )
                    )

    async def _checkpoint(self) -> None:
        """Triggers sent, rows written, changed rooms in the changelog, then offsets."""
        assert self.producer is not None
        assert self.consumer is not None
        began = time.monotonic()
        self._next_checkpoint = time.monotonic() + self.settings.commit_interval_seconds
        await self._await_sends()
        if not await self.flush_sink():
            return
        await dead_letter_refused(self.sink, self.producer, self.settings.topic_dead_letters)
        topic = self.settings.room_changelog_topic
        for partition, room_ids in self.dirty.items():
            rooms = self.rooms.get(partition, {})
            for room_id in room_ids:
                room = rooms.get(room_id)
                if room is None:
                    continue
                self._sends.append(
                    await self.producer.send(
                        topic,
                        key=room_id.encode(),
                        value=orjson.dumps(room.to_dict()),
                        partition=partition,
                    )
                )
        self.dirty.clear()
        await self._await_sends()
        offsets = {tp: o for tp, o in self.positions.items() if self.committed.get(tp) != o}
        if offsets:
            await self.consumer.commit(offsets)
            self.committed.update(offsets)
        self.checkpoint_completed(began)

    def owned_partitions(self) -> list[int]:
        return sorted(self.rooms)

    async def revoked(self) -> None:
        async with self._lock:
            await self._checkpoint()

    async def assigned(self, partitions: set[int]) -> None:
        async with self._lock:
            for partition in set(self.rooms) - partitions:
                del self.rooms[partition]
                self.dirty.pop(partition, None)
            for tp in list(self.positions):
                if tp.partition not in partitions:
                    self.positions.pop(tp)
                    self.committed.pop(tp, None)
            for partition in sorted(partitions - set(self.rooms)):
                self.rooms[partition] = await self._recover(partition)

    async def _recover(self, partition: int) -> dict[str, RoomWindow]:
        """The partition's rooms as of the last checkpoint, from the changelog."""
        assert self.reader is not None
        tp = TopicPartition(self.settings.room_changelog_topic, partition)
        self.reader.assign([tp])
        end = (await self.reader.end_offsets([tp]))[tp]
        rooms: dict[str, RoomWindow] = {}
        if end > 0:
            await self.reader.seek_to_beginning(tp)
            while await self.reader.position(tp) < end:
                got = await self.reader.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in got.get(tp, []):
                    if record.key is None:
                        continue
                    if record.value is None:
                        rooms.pop(record.key.decode(), None)
                        continue
                    room = RoomWindow.from_dict(orjson.loads(record.value))
                    rooms[room.room_id] = room
        log.info("room partition %d: %d rooms from the changelog", partition, len(rooms))
        return rooms
