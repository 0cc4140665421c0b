"""The room engine: room rules on live comments re-keyed by room.

Input events are keyed by user, so one room's comments arrive on every partition. The scoring
engine sends each applied comment (with its sentiment) to `{app_id}-room-comments`, keyed by
room; this engine consumes that topic in its own consumer group, so each room's comments meet
in one place whichever worker scored them.

Rooms are kept in memory while their partition is assigned here and in a compacted changelog.
A checkpoint (`agents.checkpoint`, the one the scoring engine runs), every
`COMMIT_INTERVAL_SECONDS` and before partitions move, waits for the fired triggers on
`lifecycle-triggers`, writes the sink's rows (the rows the store refuses to dead-letters),
writes each changed room once to the changelog, and only then commits the comment offsets.
A crash replays comments since the last commit onto the rooms as they were then, so the same
triggers fire with the same ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.structs import TopicPartition

from agents.changelog import Records, read_changelog
from agents.checkpoint import Checkpoint, Durability
from agents.clients import Rebalance, start_room_clients
from agents.engine import BatchEngine
from pipeline import metrics
from pipeline.domain.rooms import RoomWindow
from pipeline.domain.triggers import Rule
from pipeline.settings import Settings
from pipeline.user_triggers import encode_trigger, trigger_row
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


class RoomEngine(BatchEngine):
    """Keeps each owned room's comment window and fires the room rules."""

    name_of_loop = "rooms"
    durability: Durability  # set in on_start, with the clients

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
        self.sends: list[asyncio.Future[Any]] = []  # triggers sent since the last checkpoint

    async def on_start(self) -> None:
        listener = Rebalance(self.on_revoked, self.on_assigned)
        clients = await start_room_clients(self.settings, listener)
        self.producer, self.reader, self.consumer = clients
        self.durability = Durability(
            producer=clients.producer,
            consumer=clients.consumer,
            sink=self.sink,
            flush_sink=self.flush_sink,
            dead_letters_topic=self.settings.topic_dead_letters,
            changelog_topic=self.settings.room_changelog_topic,
        )
        await clients.consumer.start()
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
                    log.error("unreadable room comment at %s[%d]@%d", *tp, record.offset)
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
                    self.sends.append(
                        await self.producer.send(
                            self.settings.topic_triggers,
                            key=room_id.encode(),
                            value=encode_trigger(trigger, now),
                        )
                    )

    async def _checkpoint(self) -> None:
        """Triggers sent, rows written, changed rooms in the changelog, then offsets."""
        began = time.monotonic()
        self._next_checkpoint = began + self.settings.commit_interval_seconds
        sends, self.sends = self.sends, []
        changes: dict[int, list[tuple[bytes, bytes]]] = {}
        for partition, room_ids in self.dirty.items():
            rooms = self.rooms.get(partition, {})
            changes[partition] = [
                (room_id.encode(), orjson.dumps(rooms[room_id].to_dict()))
                for room_id in room_ids
                if room_id in rooms
            ]
        self.dirty.clear()
        offsets = {tp: o for tp, o in self.positions.items() if self.committed.get(tp) != o}
        await Checkpoint(self.durability, began, sends, changes, offsets).commit(self)

    def keep_changes(self, changes: Mapping[int, Records]) -> None:
        """The sink did not take its rows: the rooms go with the next checkpoint."""
        for partition, records in changes.items():
            if partition in self.rooms:
                self.dirty.setdefault(partition, set()).update(key.decode() for key, _ in records)

    def changes_written(self, partition: int, records: Records, changelog_offset: int) -> None:
        """Rooms keep no local copy: the changelog is read back in full."""

    def offsets_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)
        self.lag.committed(offsets)

    def owned_partitions(self) -> list[int]:
        return sorted(self.rooms)

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            await self._checkpoint()

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        partitions = {tp.partition for tp in assigned}
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
            async for record in read_changelog(self.reader, tp, None, end):
                if record.key is None:
                    continue
                if record.value is None:
                    rooms.pop(record.key.decode(), None)
                    continue
                room = RoomWindow.from_dict(orjson.loads(record.value))
                rooms[room.room_id] = room
        log.info("room partition %d: %d rooms from the changelog", partition, len(rooms))
        return rooms
