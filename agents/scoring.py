"""The scoring engine: input events in batches, per-user state, checkpoints.

Faust's per-message stream path costs more than everything this engine does per event, so the
hot path reads batches with aiokafka's `getmany` inside the Faust worker (a mode Service) and
keeps the guarantees Faust's tables give, itself:

- Each partition's users live in memory while the partition is assigned here, and in a
  compacted changelog topic partitioned like the inputs (and, with `rocksdb://`, on local
  disk with the changelog offset they include). A new owner rebuilds them before it reads.
- Events are validated on arrival (bad ones go to dead-letters), held per partition until the
  partition's event clock passes them (so each user's events from the four topics apply in
  event-time order), applied, and each changed user's score document is published once per
  batch.
- A checkpoint, every `COMMIT_INTERVAL_SECONDS` and before partitions move, takes a snapshot
  (the records sent so far, each user changed since the last checkpoint encoded once, the
  input offsets up to the first event not yet applied), then waits for those records, writes
  the sink's rows to ClickHouse, writes the users to the changelog, and only then commits the
  offsets. The timer's checkpoint does the waiting in the background while the loop goes on
  scoring; one checkpoint is in flight at a time. A crash replays from the last commit; the
  event ids kept in each user's state make the replayed events no-ops, so each event counts
  once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import TopicPartition

from agents.engine import BatchEngine
from agents.refused import dead_letter_refused
from pipeline import metrics
from pipeline.dead_letters import dead_letter
from pipeline.domain.state import UserState
from pipeline.domain.triggers import Fired
from pipeline.local_state import LocalPartition, open_partition
from pipeline.scorer import Outcome, Scorer
from pipeline.settings import Settings
from pipeline.store import decode_user, encode_user
from pipeline.topics import end_offset
from pipeline.user_triggers import trigger_row
from schemas.headers import is_backfill, is_end_marker
from schemas.validation import Rejection
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


# How long the broker may keep a fetch waiting for records: a topic read to its end is
# fetched again this often.
FETCH_WAIT_MS = 20


def internal_error(exc: Exception) -> Rejection:
    log.exception("scoring failed on a message; it goes to dead-letters")
    return Rejection("internal_error", None, f"{type(exc).__name__}: {exc}")


class OffsetTracker:
    """Which input offsets to commit: every record read is applied or rejected at once, so a
    topic-partition's next offset to read is safe once the checkpoint that covers it is
    durable."""

    def __init__(self) -> None:
        self._committed: dict[TopicPartition, int] = {}

    def to_commit(self, read_to: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Next offsets to commit that moved since the last `committed` call."""
        return {tp: o for tp, o in read_to.items() if self._committed.get(tp) != o}

    def committed(self, offsets: dict[TopicPartition, int]) -> int:
        """Record offsets as committed; returns how many records they moved past."""
        moved = sum(o - self._committed.get(tp, o) for tp, o in offsets.items())
        self._committed.update(offsets)
        return moved

    def forget(self, tp: TopicPartition) -> None:
        self._committed.pop(tp, None)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, engine: ScoringEngine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.engine.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.engine.assigned(set(assigned))


class ScoringEngine(BatchEngine):
    """Consumes the input topics in batches and keeps every owned user's scores current."""

    name_of_loop = "scoring"

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
        self.offsets = OffsetTracker()
        self.local: dict[int, LocalPartition] = {}
        self.owned: set[int] = set()
        self.read_to: dict[TopicPartition, int] = {}  # next offset after the last one read
        self.pending_docs: dict[str, UserState] = {}  # changed users whose document is due
        self._in_flight: asyncio.Task[None] | None = None  # the checkpoint being completed
        self._checkpoint_at = 0.0  # monotonic time the last checkpoint began
        self.state_dir = settings.data_dir / "worker" / "state"

    # -- lifecycle -------------------------------------------------------------------------

    async def on_start(self) -> None:
        # The worker's logging set-up leaves the client libraries at DEBUG: every send built
        # a log record (a third of the cost of a send) that no handler printed.
        for name in ("aiokafka", "kafka"):
            library = logging.getLogger(name)
            library.setLevel(max(library.getEffectiveLevel(), logging.INFO))
        bootstrap = self.settings.kafka_bootstrap
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        await self.producer.start()
        # Reads changelog partitions when they are assigned here; no group.
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await self.reader.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{self.settings.app_id}-scoring",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The embedded broker lets a member join after about half the session timeout.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            # Partition n of every input topic goes to the same worker: a user's events of
            # the four topics meet in one place.
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # Answer a fetch as soon as records come: a trigger must not wait for a full one.
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        self.consumer.subscribe(topics=sorted(self.inputs), listener=_Rebalance(self))
        await self.consumer.start()
        self.start_loop()

    async def on_stop(self) -> None:
        try:
            await super().on_stop()
        finally:
            for local in self.local.values():
                local.close()
            self.local.clear()

    def owned_partitions(self) -> list[int]:
        return sorted(self.owned)

    # -- the batch -------------------------------------------------------------------------

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Validate and apply each record as it comes (no waiting for other topics: a late
        event derives its user's history again), then announce the idle transitions each
        partition's watermark has passed."""
        scorer = self.scorer
        now = datetime.now(tz=UTC)
        seen: Counter[str] = Counter()
        changed: dict[str, UserState] = {}
        scored: Counter[str] = Counter()
        duplicates: Counter[str] = Counter()
        apply_event = scorer.apply_event
        for tp, records in batches.items():
            if tp.partition not in self.owned or not records:
                continue
            seen[tp.topic] += len(records)
            partition = tp.partition
            watermark = scorer.watermark(partition)
            for record in records:
                headers = record.headers
                if headers and is_end_marker(headers):
                    seen[tp.topic] -= 1  # a backfill's end marker: not an event
                    watermark.end_backfill(tp.topic)
                    continue
                try:
                    prepared = scorer.prepare(tp.topic, record.value or b"", now)
                    outcome = apply_event(prepared, partition, now, document=False)
                except Exception as exc:
                    await self._reject(exc, tp, record)
                    continue
                history = bool(headers) and is_backfill(headers)
                watermark.observe(tp.topic, prepared.fact.ts_ms, history)
                if outcome.duplicate:
                    duplicates[tp.topic] += 1
                    if outcome.duplicate_order:
                        metrics.DUPLICATE_ORDERS.labels(tp.topic).inc()
                else:
                    scored[tp.topic] += 1
                self._record(outcome, changed)
                if outcome.fired or outcome.room_comment is not None or outcome.transitions:
                    await self._send_outputs(outcome)
            self.read_to[tp] = records[-1].offset + 1
        for topic, count in seen.items():
            metrics.EVENTS_IN.labels(topic).inc(count)
        # Idle users whose silent or churned time the watermark has passed.
        assert self.consumer is not None
        for tp, read_to in self.read_to.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None and tp.partition in self.owned:
                scorer.watermark(tp.partition).read_up(tp.topic, read_to >= highwater)
        for partition in sorted(self.owned):
            for swept in scorer.sweep(partition, now, documents=False):
                await self._collect(swept, changed)
        for topic, count in scored.items():
            metrics.EVENTS_SCORED.labels(topic).inc(count)
        for topic, count in duplicates.items():
            metrics.DUPLICATES.labels(topic).inc(count)
        # Live, each changed user's document goes out with the batch; while catching up on a
        # backlog it waits for the checkpoint, so a user with many events in the backlog has
        # one document computed per checkpoint rather than one per batch.
        self.pending_docs.update(changed)
        if not self._behind():
            await self._publish_pending(now)
            # Caught up: checkpoints come at the live interval again.
            live_due = self._checkpoint_at + self.settings.commit_interval_seconds
            self._next_checkpoint = min(self._next_checkpoint, live_due)
        latest = scorer.event_clock_ms()
        if latest is not None:
            metrics.EVENT_CLOCK.set(latest / 1000)

    def _record(self, outcome: Outcome, changed: dict[str, UserState]) -> None:
        """An outcome's rows to the sink, its metrics, and its user among the changed ones."""
        self.sink.add_many(outcome.rows)
        for table, row in outcome.rows:
            if table == "trigger_outcomes":
                metrics.TRIGGER_OUTCOMES.labels(row["rule"], row["outcome"]).inc()
        for transition in outcome.transitions:
            if transition.retracted:
                metrics.CORRECTIONS.inc()
                continue
            metrics.TRANSITIONS.labels(transition.from_stage or "", transition.to_stage).inc()
            if transition.is_reactivation:
                metrics.REACTIVATIONS.inc()
        if outcome.history_gap:
            metrics.HISTORY_GAPS.inc()
        if outcome.user is not None and not outcome.duplicate:
            changed[outcome.user.user_id] = outcome.user

    async def _send_outputs(self, outcome: Outcome) -> None:
        """An outcome's triggers, its stage changes and corrections (the `stage_transitions`
        rows, `valid` 0 for a retracted one), and its live comment for the room rules."""
        await self._fire(outcome.fired)
        if outcome.transitions:
            assert self.producer is not None
            topic = self.settings.topic_stage_changes
            for table, row in outcome.rows:
                if table == "stage_transitions":
                    self._sends.append(
                        await self.producer.send(
                            topic, key=row["user_id"].encode(), value=orjson.dumps(row)
                        )
                    )
        comment = outcome.room_comment
        if comment is not None:
            assert self.producer is not None
            self._sends.append(
                await self.producer.send(
                    self.settings.room_comments_topic,
                    key=comment.room_id.encode(),
                    value=orjson.dumps(comment._asdict()),
                )
            )

    async def _collect(self, outcome: Outcome, changed: dict[str, UserState]) -> None:
        self._record(outcome, changed)
        await self._send_outputs(outcome)

    async def _fire(self, fired: list[tuple[Fired, bytes]]) -> None:
        """Fired triggers to `lifecycle-triggers`, keyed by their subject."""
        assert self.producer is not None
        for trigger, message in fired:
            metrics.TRIGGERS.labels(trigger.rule).inc()
            self._sends.append(
                await self.producer.send(
                    self.settings.topic_triggers, key=trigger.subject_id.encode(), value=message
                )
            )

    def _behind(self) -> bool:
        """More than a batch of input records waits to be read on the owned partitions."""
        assert self.consumer is not None
        waiting = 0
        for tp, read_to in self.read_to.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None and tp.partition in self.owned:
                waiting += max(0, highwater - read_to)
        return waiting > self.settings.batch_max_records

    async def _publish_pending(self, now: datetime) -> None:
        if self.pending_docs:
            users, self.pending_docs = list(self.pending_docs.values()), {}
            await self._publish(users, now)

    async def _publish(self, users: list[UserState], now: datetime) -> None:
        """Each changed user's score document, once per batch, to the compacted topic, and
        the triggers of rules on model scores it fired."""
        assert self.producer is not None
        topic = self.settings.topic_scores
        for document, row, fired in self.scorer.documents(users, now):
            self.sink.add("user_scores", row)
            for trigger, _ in fired:
                self.sink.add("triggers", trigger_row(trigger, now))
            await self._fire(fired)
            self._sends.append(
                await self.producer.send(
                    topic, key=document.user_id.encode(), value=document.model_dump_json().encode()
                )
            )

    async def _reject(self, exc: Exception, tp: TopicPartition, record: Any) -> None:
        assert self.producer is not None
        rejection = exc if isinstance(exc, Rejection) else internal_error(exc)
        metrics.DEAD_LETTERS.labels(tp.topic, rejection.reason).inc()
        value = dead_letter(
            rejection, tp.topic, tp.partition, record.offset, record.key, record.value
        )
        self._sends.append(
            await self.producer.send(self.settings.topic_dead_letters, key=record.key, value=value)
        )

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
        """Snapshot what a checkpoint makes durable, in one step of the loop: the records
        sent so far, every user changed since the last one (encoded now, as they are now) and
        the input offsets of the events applied so far. The previous checkpoint finishes
        first, so offsets are committed in order."""
        await self._finish_checkpoint()
        interval = self.settings.commit_interval_seconds
        if self._behind():
            interval = max(interval, self.settings.catch_up_commit_interval_seconds)
        self._checkpoint_at = time.monotonic()
        self._next_checkpoint = self._checkpoint_at + interval
        await self._publish_pending(datetime.now(tz=UTC))
        sends, self._sends = self._sends, []
        changed: dict[int, list[UserState]] = {
            partition: self.store.take_dirty(partition)
            for partition in self.store.dirty_partitions()
        }
        records = {
            partition: [(user.user_id.encode(), encode_user(user, partition)) for user in users]
            for partition, users in changed.items()
        }
        offsets = self.offsets.to_commit(self.read_to)
        self._in_flight = asyncio.create_task(
            self._complete_checkpoint(sends, changed, records, offsets), name="checkpoint"
        )

    async def _complete_checkpoint(
        self,
        sends: list[asyncio.Future[Any]],
        changed: dict[int, list[UserState]],
        records: dict[int, list[tuple[bytes, bytes]]],
        offsets: dict[TopicPartition, int],
    ) -> None:
        """Records sent, rows written (those the store refuses in dead-letters), users in the
        changelog (and local state), then the offsets: a crash at any point replays from
        offsets whose effects are all durable."""
        assert self.producer is not None
        assert self.consumer is not None
        if sends:
            await self.producer.flush()
            await asyncio.gather(*sends)
        if not await self.flush_sink():
            # Rows of applied events are only in memory: commit nothing until they are
            # written, and write these users with the next checkpoint.
            for partition, users in changed.items():
                for user in users:
                    self.store.mark_dirty(user.user_id, partition)
            return
        # Rows the store refused (a value it cannot hold) go to dead-letters, not back.
        await dead_letter_refused(self.sink, self.producer, self.settings.topic_dead_letters)
        topic = self.settings.changelog_topic
        futures = [
            await self.producer.send(topic, key=key, value=value, partition=partition)
            for partition, pairs in records.items()
            for key, value in pairs
        ]
        await self.producer.flush()
        last: dict[int, int] = {}
        for metadata in await asyncio.gather(*futures):
            last[metadata.partition] = max(last.get(metadata.partition, -1), metadata.offset)
        for partition, pairs in records.items():
            local = self.local.get(partition)
            if local is not None and partition in last:
                local.write(pairs, last[partition])
        if offsets:
            await self.consumer.commit(offsets)
            metrics.EVENTS_COMMITTED.inc(self.offsets.committed(offsets))
        metrics.CHECKPOINTS.inc()
        self.checkpoint_completed(self._checkpoint_at)

    # -- partitions moving -----------------------------------------------------------------

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        """Checkpoint before the partitions move; their held events are not acknowledged, so
        their next owner (maybe this worker again) reads them."""
        async with self._lock:
            await self._checkpoint()
            for tp in revoked:
                if tp.topic in self.inputs:
                    self.offsets.forget(tp)
                    self.read_to.pop(tp, None)
                    self.scorer.watermarks.pop(tp.partition, None)

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            await self._finish_checkpoint()  # it writes to the partitions' local state
            partitions = {tp.partition for tp in assigned if tp.topic in self.inputs}
            for partition in self.owned - partitions:
                self.scorer.forget_partition(partition)
                local = self.local.pop(partition, None)
                if local is not None:
                    local.close()
            for partition in sorted(partitions - self.owned):
                await self._recover(partition)
            self.owned = partitions
            for partition in partitions:
                await self._resume_offsets(partition)
            metrics.ASSIGNED_PARTITIONS.set(sum(1 for tp in assigned if tp.topic in self.inputs))

    async def _recover(self, partition: int) -> None:
        """Load the partition's users: the local copy, then the changelog after it."""
        assert self.reader is not None
        local = open_partition(self.settings.table_store, self.state_dir, partition)
        tp = TopicPartition(self.settings.changelog_topic, partition)
        self.reader.assign([tp])
        end = await end_offset(self.reader, tp)
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
            self.store.load(user, partition)
            loaded += 1
        tail: dict[bytes, bytes | None] = {}
        last = start - 1
        if start < end:
            self.reader.seek(tp, start)
            while await self.reader.position(tp) < end:
                got = await self.reader.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in got.get(tp, []):
                    last = record.offset
                    if record.value is None or record.key is None:
                        continue
                    user, _ = decode_user(record.value)
                    self.store.load(user, partition)
                    tail[record.key] = record.value
        if tail or last >= start:
            local.write(tail.items(), max(last, end - 1))
        self.local[partition] = local
        self.scorer.adopt_partition(partition)
        log.info(
            "partition %d: %d users from local state, %d from the changelog",
            partition, loaded, len(tail),
        )  # fmt: skip

    async def _resume_offsets(self, partition: int) -> None:
        """Where reading the partition's input topics starts: their committed offsets."""
        assert self.consumer is not None
        tps = [TopicPartition(topic, partition) for topic in self.settings.input_topics]
        begins = await self.consumer.beginning_offsets(tps)
        for tp in tps:
            committed = await self.consumer.committed(tp)
            position = begins[tp] if committed is None else committed
            self.read_to[tp] = position
            self.offsets.committed({tp: position})
