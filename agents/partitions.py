"""The scoring engine's owned partitions: one object each, with its local state store and the
offsets of its input topic-partitions, and the recovery that builds it when it is assigned."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from agents.changelog import read_changelog
from pipeline import metrics
from pipeline.local_state import LocalPartition, open_partition
from pipeline.store import UserStore, decode_user
from pipeline.topics import end_offset

log = logging.getLogger(__name__)


class PartitionOffsets:
    """Input offsets of one partition's topic-partitions: where reading got to, and what was
    committed. Every record read is applied or rejected at once, so the next offset to read is
    safe to commit once the checkpoint that covers it is durable."""

    def __init__(self) -> None:
        self.read_to: dict[TopicPartition, int] = {}  # next offset after the last one read
        self._committed: dict[TopicPartition, int] = {}

    def resume(self, tp: TopicPartition, position: int) -> None:
        """Reading `tp` starts at `position`, its committed offset."""
        self.read_to[tp] = position
        self._committed[tp] = position

    def read(self, tp: TopicPartition, next_offset: int) -> None:
        self.read_to[tp] = next_offset

    def to_commit(self) -> dict[TopicPartition, int]:
        """Next offsets to commit that moved since the last `committed` call."""
        return {tp: o for tp, o in self.read_to.items() if self._committed.get(tp) != o}

    def committed(self, offsets: Mapping[TopicPartition, int]) -> int:
        """Record offsets as committed; returns how many records they moved past."""
        moved = sum(o - self._committed.get(tp, o) for tp, o in offsets.items())
        self._committed.update(offsets)
        return moved

    def forget(self, tp: TopicPartition) -> None:
        """`tp` was revoked: its next owner (maybe this worker again) resumes it."""
        self.read_to.pop(tp, None)
        self._committed.pop(tp, None)


class OwnedPartition:
    """A partition of the input topics assigned here: its users' local copy and its offsets."""

    def __init__(self, number: int, local: LocalPartition) -> None:
        self.number = number
        self.local = local
        self.offsets = PartitionOffsets()

    async def resume(self, consumer: AIOKafkaConsumer, topics: Sequence[str]) -> None:
        """Reading the partition's input topics starts at their committed offsets (at their
        beginning when none is)."""
        tps = [TopicPartition(topic, self.number) for topic in topics]
        begins = await consumer.beginning_offsets(tps)
        for tp in tps:
            committed = await consumer.committed(tp)
            self.offsets.resume(tp, begins[tp] if committed is None else committed)

    def reading(self, consumer: AIOKafkaConsumer) -> Iterator[tuple[TopicPartition, int, int]]:
        """Each input topic-partition whose high watermark `consumer` knows: (tp, next offset
        to read, high watermark)."""
        for tp, read_to in self.offsets.read_to.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                yield tp, read_to, highwater

    def close(self) -> None:
        self.local.close()


def take_changes(store: UserStore) -> dict[int, list[tuple[bytes, bytes | None]]]:
    """Each user changed since the last call, encoded once as it is now, and a tombstone
    (None) for each user erased, per partition: the changelog records of a checkpoint."""
    store.freeze()
    return store.take_frozen()


async def encode_snapshot(
    store: UserStore, chunk: int = 200
) -> dict[int, list[tuple[bytes, bytes | None]]]:
    """The changelog records of the store's snapshot (`UserStore.freeze`), encoded `chunk`
    users at a time, the engine's loop going on between chunks (a user it changes meanwhile
    is encoded first, as it was at the snapshot)."""
    more = store.encode_frozen(chunk)
    while more:
        await asyncio.sleep(0)  # the loop's turn
        more = store.encode_frozen(chunk)
    changes = store.take_frozen()
    # Users held, and their size estimated from the records encoded.
    sizes = [len(value) for records in changes.values() for _, value in records if value]
    metrics.STATE_USERS.set(len(store))
    if sizes:
        metrics.STATE_BYTES.set(len(store) * sum(sizes) / len(sizes))
    return changes


async def recover_partition(
    reader: AIOKafkaConsumer,
    changelog: TopicPartition,
    store: UserStore,
    store_url: str,
    state_dir: Path,
) -> OwnedPartition:
    """Load the partition's users into `store`: the local copy, then the changelog after it
    (which the local copy then includes). A local copy ahead of the changelog is rebuilt."""
    partition = changelog.partition
    local = open_partition(store_url, state_dir, partition)
    reader.assign([changelog])
    end = await end_offset(reader, changelog)
    start = local.changelog_offset + 1
    if start > end:
        log.warning(
            "local state of partition %d is ahead of the changelog (%d > %d): rebuilt",
            partition, start, end,
        )  # fmt: skip
        local.reset()
        start = 0
    loaded = 0
    for _key, value in local.users():
        user, _ = decode_user(value)
        store.load(user, partition)
        loaded += 1
    tail: dict[bytes, bytes | None] = {}
    last = start - 1
    if start < end:
        async for record in read_changelog(reader, changelog, start, end):
            last = record.offset
            if record.key is None:
                continue
            if record.value is None:  # an erased user: gone from the local copy too
                store.unload(record.key.decode())
                tail[record.key] = None
                continue
            user, _ = decode_user(record.value)
            store.load(user, partition)
            tail[record.key] = record.value
    if tail or last >= start:
        local.write(tail.items(), max(last, end - 1))
    log.info(
        "partition %d: %d users from local state, %d from the changelog",
        partition, loaded, len(tail),
    )  # fmt: skip
    return OwnedPartition(partition, local)
