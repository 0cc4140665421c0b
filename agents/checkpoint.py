"""One checkpoint interval of an engine, made durable in order; the scoring and room engines
run the same one.

A checkpoint is built from a snapshot taken in one step of the engine's loop: the records sent
so far, the state changed since the last checkpoint (encoded as it is then) and the input
offsets of the records processed so far. `commit` makes them durable in the order that lets a
crash at any point replay from offsets whose effects are all durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.structs import TopicPartition

from agents.changelog import Producer, Records, write_changelog
from agents.refused import dead_letter_refused
from sinks.base import BatchingSink


class Committer(Protocol):
    """What a checkpoint needs of the group's `AIOKafkaConsumer`."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


class CheckpointOwner(Protocol):
    """The engine a checkpoint reports to."""

    def keep_changes(self, changes: Mapping[int, Records]) -> None:
        """The checkpoint could not complete: write these with the next one."""

    def changes_written(self, partition: int, records: Records, changelog_offset: int) -> None:
        """The partition's records are in its changelog up to `changelog_offset`."""

    def offsets_committed(self, offsets: dict[TopicPartition, int]) -> None:
        """The input offsets are committed."""

    def checkpoint_completed(self, began: float) -> None:
        """The checkpoint whose snapshot was taken at `began` (monotonic) is durable."""


@dataclass(frozen=True)
class Durability:
    """Where an engine's checkpoints make things durable."""

    producer: Producer
    consumer: Committer
    sink: BatchingSink
    flush_sink: Callable[[], Awaitable[bool]]  # False: the store did not take the rows
    dead_letters_topic: str
    changelog_topic: str


class Checkpoint:
    """What one interval made durable, and `commit`, which does it.

    Parameters
    ----------
    began
        Monotonic time the snapshot was taken.
    sends
        Futures of the records sent during the interval (outputs, dead letters).
    changes
        Changed state per partition, encoded: (key, value) pairs for the changelog.
    offsets
        Input offsets to commit (the next offset to read per topic-partition).
    """

    def __init__(
        self,
        durability: Durability,
        began: float,
        sends: list[asyncio.Future[Any]],
        changes: Mapping[int, Records],
        offsets: dict[TopicPartition, int],
    ) -> None:
        self.durability = durability
        self.began = began
        self.sends = sends
        self.changes = changes
        self.offsets = offsets
        self.completed = False

    async def commit(self, owner: CheckpointOwner) -> bool:
        """Make the interval durable and commit its offsets; returns whether it completed.

        When the sink cannot write its rows, nothing is committed, the changes go back to
        `owner.keep_changes` and this returns False. A failed send (output, dead letter,
        changelog) or commit raises before any later step.
        """
        target = self.durability
        # 1. The records sent during the interval are on the broker.
        if self.sends:
            await target.producer.flush()
            await asyncio.gather(*self.sends)
        # 2. The sink's rows are in the store; rows of applied events only in memory hold
        # back every later step, or a crash would lose them past a committed offset.
        if not await target.flush_sink():
            owner.keep_changes(self.changes)
            return False
        # 3. Rows the store refused (a value it cannot hold) go to dead-letters, not back.
        await dead_letter_refused(target.sink, target.producer, target.dead_letters_topic)
        # 4. Changed state in the changelog, then in the local copy that includes it.
        last = await write_changelog(target.producer, target.changelog_topic, self.changes)
        for partition, records in self.changes.items():
            if partition in last:
                owner.changes_written(partition, records, last[partition])
        # 5. The input offsets, now that everything before them is durable.
        if self.offsets:
            await target.consumer.commit(self.offsets)
            owner.offsets_committed(self.offsets)
        # 6. Completed: the engine's stall tracking sees it.
        self.completed = True
        owner.checkpoint_completed(self.began)
        return True
