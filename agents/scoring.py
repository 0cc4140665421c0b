"""The scoring engine: input events in batches, per-user state, checkpoints.

Faust's per-message stream path costs more than everything this engine does per event, so the
hot path reads batches with aiokafka's `getmany` inside the Faust worker (a mode Service) and
keeps the guarantees Faust's tables give, itself:

- Each owned partition's users live in memory, in a compacted changelog partitioned like the
  inputs and (with `rocksdb://`) on local disk (`agents.partitions`); a new owner rebuilds
  them before it reads.
- Events are validated and applied as they arrive (bad ones go to dead-letters; a late event
  derives its user's history again); each partition's watermark says which idle users'
  silent or churned time has passed. Changed users' score documents go out once per batch
  live, once per checkpoint while catching up (`agents.outputs`).
- A checkpoint (`agents.checkpoint`), every `COMMIT_INTERVAL_SECONDS` and before partitions
  move, snapshots in one step of the loop and is made durable in the background while the
  loop goes on scoring; one is in flight at a time. A crash replays from the last commit; the
  event ids kept in each user's state make the replayed events no-ops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import TopicPartition

from agents.batch_input import prepare_batch
from agents.changelog import Records
from agents.checkpoint import Checkpoint, Durability
from agents.clients import Rebalance, start_scoring_clients
from agents.engine import BatchEngine
from agents.erasures import Erasing, Erasures
from agents.outputs import ScoringOutputs
from agents.partitions import OwnedPartition, encode_snapshot, recover_partition
from pipeline import metrics
from pipeline.domain.state import UserState
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


class ScoringEngine(BatchEngine):
    """Consumes the input topics in batches and keeps every owned user's scores current."""

    name_of_loop = "scoring"
    outputs: ScoringOutputs  # set in on_start, with the producer
    durability: Durability

    def __init__(
        self,
        settings: Settings,
        scorer: Scorer,
        sink: BatchingSink,
        flush_sink: Callable[[], Awaitable[bool]],
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, **kwargs)
        self.scorer = scorer
        self.store = scorer.store
        self.sink = sink
        self.flush_sink = flush_sink
        self.inputs = set(settings.input_topics)
        self.partitions: dict[int, OwnedPartition] = {}
        self._in_flight: asyncio.Task[bool] | None = None  # the checkpoint being completed
        self._checkpoint_at = 0.0  # monotonic time the last checkpoint began
        self.state_dir = settings.data_dir / "worker" / "state"
        self.erasures = Erasures(settings)

    # -- lifecycle -------------------------------------------------------------------------

    async def on_start(self) -> None:
        listener = Rebalance(self.on_revoked, self.on_assigned)
        clients = await start_scoring_clients(self.settings, sorted(self.inputs), listener)
        self.producer, self.reader, self.consumer = clients
        self.outputs = ScoringOutputs(self.settings, self.scorer, self.sink, clients.producer)
        self.durability = Durability(
            producer=clients.producer,
            consumer=clients.consumer,
            sink=self.sink,
            flush_sink=self.flush_sink,
            dead_letters_topic=self.settings.topic_dead_letters,
            changelog_topic=self.settings.changelog_topic,
        )
        await self.erasures.requests.start()
        await clients.consumer.start()
        self.start_loop()

    async def on_stop(self) -> None:
        try:
            await super().on_stop()
        finally:
            await self.erasures.requests.stop()
            for owned in self.partitions.values():
                owned.close()
            self.partitions.clear()

    def owned_partitions(self) -> list[int]:
        return sorted(self.partitions)

    # -- the batch -------------------------------------------------------------------------

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Validate each record and apply the batch's events of each partition in event-time
        order (only the batch in hand is ordered: nothing waits for other topics, and a late
        event derives its user's history again), then announce the idle transitions each
        partition's watermark has passed."""
        scorer, outputs = self.scorer, self.outputs
        now = datetime.now(tz=UTC)
        changed: dict[str, UserState] = {}
        scored: Counter[str] = Counter()
        duplicates: Counter[str] = Counter()
        apply_event = scorer.apply_event
        await self.erasures.apply_due(set(self.partitions), scorer, self.sink, outputs)
        batch = await prepare_batch(batches, self.partitions, scorer, self.erasures, outputs, now)
        for partition, entries, ended in batch:
            watermark = scorer.watermark(partition)
            for _, _, tp, record, prepared, history in entries:
                try:
                    outcome = apply_event(prepared, partition, now, False, history)
                except Exception as exc:
                    await outputs.reject(exc, tp, record)
                    continue
                watermark.observe(tp.topic, prepared.fact.ts_ms, history)
                if outcome.duplicate:
                    duplicates[tp.topic] += 1
                    if outcome.duplicate_order:
                        metrics.DUPLICATE_ORDERS.labels(tp.topic).inc()
                elif not outcome.held:  # a held refund counts when its payment comes
                    scored[tp.topic] += 1 + outcome.released
                    if not history:
                        outputs.applied(prepared.fact.ts_ms, record.timestamp)
                outputs.record(outcome, changed)
                if (
                    outcome.fired
                    or outcome.room_comment
                    or outcome.transitions
                    or outcome.dead_letters
                ):
                    await outputs.send(outcome)
            for topic in ended:  # a backfill's end marker comes after its events
                watermark.end_backfill(topic)
        # Idle users whose silent or churned time the watermark has passed.
        for tp, read_to, highwater in self._reading():
            scorer.watermark(tp.partition).read_up(tp.topic, read_to >= highwater)
        for partition in sorted(self.partitions):
            for swept in scorer.sweep(partition, now, documents=False):
                outputs.record(swept, changed)
                await outputs.send(swept)
        outputs.rescore(self.partitions, changed)
        metrics.HELD_REFUNDS.set(scorer.held.count(scorer.store))
        for topic, count in scored.items():
            metrics.EVENTS_SCORED.labels(topic).inc(count)
        for topic, count in duplicates.items():
            metrics.DUPLICATES.labels(topic).inc(count)
        # Live, each changed user's document goes out with the batch; while catching up on a
        # backlog it waits for the checkpoint, so a user with many events in the backlog has
        # one document computed per checkpoint rather than one per batch.
        outputs.hold_documents(changed)
        if not self._behind():
            await outputs.publish_pending(now)
            # Caught up: checkpoints come at the live interval again.
            live_due = self._checkpoint_at + self.settings.commit_interval_seconds
            self._next_checkpoint = min(self._next_checkpoint, live_due)
        await outputs.submit()  # the round's records, in whole batches
        latest = scorer.event_clock_ms()
        if latest is not None:
            metrics.EVENT_CLOCK.set(latest / 1000)

    def _reading(self) -> list[tuple[TopicPartition, int, int]]:
        assert self.consumer is not None
        consumer = self.consumer
        return [row for owned in self.partitions.values() for row in owned.reading(consumer)]

    def _behind(self) -> bool:
        """More than a batch of input records waits to be read on the owned partitions."""
        waiting = sum(max(0, highwater - read_to) for _, read_to, highwater in self._reading())
        return waiting > self.settings.batch_max_records

    # -- checkpoints -----------------------------------------------------------------------

    async def _checkpoint(self) -> None:
        """Make everything applied so far durable, then commit the input offsets (waits)."""
        await self._begin_checkpoint()
        await self._finish_checkpoint()

    async def _periodic_checkpoint(self) -> None:
        """The timer's checkpoint: its snapshot is taken here, the waiting (sends, the
        ClickHouse insert, the changelog) goes on while the loop scores the next batches."""
        await self._begin_checkpoint()

    async def _finish_checkpoint(self) -> None:
        """Wait for the checkpoint in flight, if any; its failure stops the loop."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _begin_checkpoint(self) -> None:
        """Snapshot, under the engine's lock, the records added so far (their batches handed
        over), every user changed since the last one (copied on write until `_commit` encodes
        them) and the input offsets of the events applied so far. The previous checkpoint
        finishes first, so offsets are committed in order."""
        await self._finish_checkpoint()
        interval = self.settings.commit_interval_seconds
        if self._behind():
            interval = max(interval, self.settings.catch_up_commit_interval_seconds)
        self._checkpoint_at = time.monotonic()
        self._next_checkpoint = self._checkpoint_at + interval
        await self.outputs.publish_pending(datetime.now(tz=UTC))
        self.store.freeze()  # the changed users, encoded as they are now by `_commit`
        offsets: dict[TopicPartition, int] = {}
        for owned in self.partitions.values():
            offsets.update(owned.offsets.to_commit())
        sends = await self.outputs.take_sends()
        erasing, self.erasures.waiting = self.erasures.waiting, []
        commit = self._commit(self._checkpoint_at, sends, offsets, erasing)
        self._in_flight = asyncio.create_task(commit, name="checkpoint")

    async def _commit(
        self,
        began: float,
        sends: list[asyncio.Future[Any]],
        offsets: dict[TopicPartition, int],
        erasing: list[Erasing],
    ) -> bool:
        """Encode the snapshot's users while the loop goes on, complete the checkpoint, then
        announce the erasures it made durable."""
        changes = await encode_snapshot(self.store)
        checkpoint = Checkpoint(self.durability, began, sends, changes, offsets)
        if not await checkpoint.commit(self):
            self.erasures.waiting[:0] = erasing  # with the next checkpoint
            return False
        if erasing:
            assert self.producer is not None
            await self.erasures.announce(erasing, self.sink, self.producer)
        return True

    def keep_changes(self, changes: Mapping[int, Records]) -> None:
        """The rows of applied events are only in memory: their users go with the next
        checkpoint, and nothing is committed until then."""
        self.store.keep(changes)

    def changes_written(self, partition: int, records: Records, changelog_offset: int) -> None:
        owned = self.partitions.get(partition)
        if owned is not None:
            owned.local.write(records, changelog_offset)

    def offsets_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self.lag.committed(offsets)
        moved = 0
        for tp, offset in offsets.items():
            owned = self.partitions.get(tp.partition)
            if owned is not None:
                moved += owned.offsets.committed({tp: offset})
        metrics.EVENTS_COMMITTED.inc(moved)

    def checkpoint_completed(self, began: float) -> None:
        metrics.CHECKPOINTS.inc()
        super().checkpoint_completed(began)

    # -- partitions moving -----------------------------------------------------------------

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        """Checkpoint before the partitions move; their held events are not acknowledged, so
        their next owner (maybe this worker again) reads them."""
        async with self._lock:
            await self._checkpoint()
            for tp in revoked:
                if tp.topic in self.inputs:
                    owned = self.partitions.get(tp.partition)
                    if owned is not None:
                        owned.offsets.forget(tp)
                    self.scorer.clocks.revoke(tp.partition)

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        """Partitions no longer assigned are dropped (users, local copy); new ones are
        recovered before reading resumes at each input's committed offset."""
        async with self._lock:
            await self._finish_checkpoint()  # it writes to the partitions' local state
            numbers = {tp.partition for tp in assigned if tp.topic in self.inputs}
            for partition in set(self.partitions) - numbers:
                self.scorer.forget_partition(partition)
                self.partitions.pop(partition).close()
            assert self.reader is not None
            for partition in sorted(numbers - set(self.partitions)):
                changelog = TopicPartition(self.settings.changelog_topic, partition)
                self.partitions[partition] = await recover_partition(
                    self.reader, changelog, self.store, self.settings.table_store, self.state_dir
                )
                self.scorer.adopt_partition(partition)
            assert self.consumer is not None
            for partition in numbers:
                await self.partitions[partition].resume(self.consumer, self.settings.input_topics)
            metrics.ASSIGNED_PARTITIONS.set(sum(1 for tp in assigned if tp.topic in self.inputs))
