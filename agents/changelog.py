"""Changelog topics of the engines' state: writing a checkpoint's changed records, reading a
partition back when it is assigned here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from pipeline.batched_sends import BatchedSends, BatchProducer

# Sends between turns of the event loop while a checkpoint writes its changelog records.
_SENDS_A_TURN = 500

# Encoded records of one partition: (key, value); a None value deletes the key.
Records = Sequence[tuple[bytes, bytes | None]]


class Producer(BatchProducer, Protocol):
    """What a checkpoint needs of an `AIOKafkaProducer`."""

    async def flush(self) -> None: ...


async def write_changelog(
    producer: Producer, topic: str, changes: Mapping[int, Records]
) -> dict[int, int]:
    """Send each partition's records to the same partition of `topic` and wait until the
    broker has them all; returns the last offset written per partition (partitions without
    records are absent). A failed send raises."""
    batches = BatchedSends(producer)
    added = 0
    for partition, records in changes.items():
        for key, value in records:
            await batches.add(topic, key, value, partition)
            added += 1
            if added % _SENDS_A_TURN == 0:
                await asyncio.sleep(0)  # adding does not yield: let the engine's loop go on
    submitted = await batches.submit()
    if not submitted:
        return {}
    await producer.flush()
    last: dict[int, int] = {}
    for batch, metadata in zip(
        submitted, await asyncio.gather(*(s.future for s in submitted)), strict=True
    ):
        end = metadata.offset + batch.records - 1  # (a batch's offset is its first record's)
        last[batch.partition] = max(last.get(batch.partition, -1), end)
    return last


async def read_changelog(
    reader: AIOKafkaConsumer, tp: TopicPartition, start: int | None, end: int
) -> AsyncIterator[Any]:
    """The records of `tp` from `start` (None: the log's beginning) up to `end` (exclusive),
    as the broker returns them (tombstones included); `reader` must have `tp` assigned."""
    if start is None:
        await reader.seek_to_beginning(tp)
    else:
        reader.seek(tp, start)
    while await reader.position(tp) < end:
        got = await reader.getmany(tp, timeout_ms=1000, max_records=10_000)
        for record in got.get(tp, []):
            yield record
