"""The checkpoint's durability steps, in order, with in-memory stand-ins for the clients."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest
from aiokafka.structs import TopicPartition

from agents.changelog import Records, write_changelog
from agents.checkpoint import Checkpoint, Durability
from sinks.base import BatchingSink, Row
from sinks.memory import MemoryClient

DEAD_LETTERS, CHANGELOG = "dead-letters", "changelog"
INPUT = TopicPartition("live", 0)


class Metadata(NamedTuple):
    partition: int
    offset: int


class Batch(list[bytes | None]):
    def append_record(self, value: bytes | None) -> bool:
        self.append(value)
        return True


class Producer:
    """Sends (of a record or of a batch) resolve on `flush`, each at the next offset of its
    topic-partition (a batch's at its first record's)."""

    def __init__(self, steps: list[str], fail_topic: str | None = None) -> None:
        self.steps = steps
        self.fail_topic = fail_topic
        self.unflushed: list[tuple[asyncio.Future[Any], str, int, int]] = []
        self.next_offset: dict[tuple[str, int], int] = {}

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        return await self.send_batch(Batch([value]), topic, partition=partition or 0)

    def create_batch(self) -> Any:
        class Builder:
            def __init__(self) -> None:
                self.records = Batch()

            def append(self, **record: Any) -> bool:
                return self.records.append_record(record["value"])

        return Builder()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self.steps.append(f"send {topic}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        count = len(batch) if isinstance(batch, Batch) else len(batch.records)
        self.unflushed.append((future, topic, partition, count))
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def flush(self) -> None:
        self.steps.append("flush producer")
        for future, topic, partition, count in self.unflushed:
            if topic == self.fail_topic:
                future.set_exception(RuntimeError(f"{topic} is gone"))
                continue
            offset = self.next_offset.get((topic, partition), 0)
            self.next_offset[topic, partition] = offset + count
            future.set_result(Metadata(partition, offset))
        self.unflushed = []


class Consumer:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.steps.append(f"commit {offsets[INPUT]}")


class Owner:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.kept: Mapping[int, Records] | None = None

    def keep_changes(self, changes: Mapping[int, Records]) -> None:
        self.kept = changes
        self.steps.append("keep changes")

    def changes_written(self, partition: int, records: Records, changelog_offset: int) -> None:
        self.steps.append(f"local {partition}@{changelog_offset}")

    def offsets_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self.steps.append("offsets committed")

    def checkpoint_completed(self, began: float) -> None:
        self.steps.append(f"completed {began}")


def refuse_negative(table: str, row: Row) -> str | None:
    return "negative amount" if row.get("amount", 0) < 0 else None


async def interval(
    steps: list[str], sink_ok: bool = True, fail_topic: str | None = None
) -> tuple[Checkpoint, Producer, Owner]:
    """A checkpoint with one output sent, one row refused by the store, two changed users
    (partitions 0 and 2) and one input offset; the steps go to `steps`."""
    producer = Producer(steps, fail_topic)
    client = MemoryClient(refuse=refuse_negative)
    client.ensure_schema()
    sink = BatchingSink(client)
    sink.add("events", {"event_id": "e1", "amount": -1})

    async def flush_sink() -> bool:
        steps.append("flush sink")
        if sink_ok:
            await asyncio.to_thread(sink.flush)
        return sink_ok

    durability = Durability(producer, Consumer(steps), sink, flush_sink, DEAD_LETTERS, CHANGELOG)
    sends = [await producer.send("triggers", value=b"t")]
    changes = {0: [(b"a", b"{}")], 2: [(b"b", b"{}")]}
    return Checkpoint(durability, 1.5, sends, changes, {INPUT: 42}), producer, Owner(steps)


async def test_the_steps_run_in_their_order() -> None:
    steps: list[str] = []
    checkpoint, _, owner = await interval(steps)
    steps.clear()
    assert await checkpoint.commit(owner)
    assert checkpoint.completed
    assert steps == [
        "flush producer",  # 1. the records sent
        "flush sink",  # 2. the sink's rows
        f"send {DEAD_LETTERS}",  # 3. the refused row
        "flush producer",
        f"send {CHANGELOG}",  # 4. changed state, then the local copies
        f"send {CHANGELOG}",
        "flush producer",
        "local 0@0",
        "local 2@0",
        "commit 42",  # 5. the input offsets
        "offsets committed",
        "completed 1.5",  # 6.
    ]


async def test_a_sink_that_does_not_write_holds_back_everything_after_it() -> None:
    steps: list[str] = []
    checkpoint, _, owner = await interval(steps, sink_ok=False)
    steps.clear()
    assert not await checkpoint.commit(owner)
    assert not checkpoint.completed
    assert steps == ["flush producer", "flush sink", "keep changes"]
    assert owner.kept == checkpoint.changes


async def test_a_failed_send_raises_before_any_commit() -> None:
    steps: list[str] = []
    checkpoint, _, owner = await interval(steps, fail_topic=CHANGELOG)
    with pytest.raises(RuntimeError, match="changelog is gone"):
        await checkpoint.commit(owner)
    assert not any(step.startswith(("commit", "local", "completed")) for step in steps)
    assert not checkpoint.completed


async def test_the_changelog_reports_each_partitions_last_offset() -> None:
    """Records go in one batch per partition; a batch's offset is its first record's, so
    the last one written is that plus its records less one."""
    steps: list[str] = []
    producer = Producer(steps)
    producer.next_offset[CHANGELOG, 0] = 10
    changes = {0: [(b"a", b"1"), (b"b", b"2"), (b"c", None)], 2: [(b"d", b"3")]}
    assert await write_changelog(producer, CHANGELOG, changes) == {0: 12, 2: 0}
    assert steps == [f"send {CHANGELOG}", f"send {CHANGELOG}", "flush producer"]
