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
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
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
from pipeline.domain.watermark import MergeBuffer, PartitionClock
from pipeline.local_state import LocalPartition, open_partition
from pipeline.scorer import Outcome, Scorer
from pipeline.settings import Settings
from pipeline.store import decode_user, encode_user
from pipeline.topics import end_offset
from pipeline.user_triggers import trigger_row
from schemas.headers import is_end_marker
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
    """Which input offsets are safe to commit: a topic-partition's offset is committed only
    once every earlier event of it is applied (or rejected), whatever order they applied in.

    Every record read is rejected at once, held in a merge buffer, or applied, so the safe
    offset is the first one still held, or the one after the last read when none is: worked
    out from the held events at each checkpoint rather than kept up to date per record."""

    def __init__(self) -> None:
        self._committed: dict[TopicPartition, int] = {}

    def to_commit(
        self, read_to: Mapping[TopicPartition, int], held: Iterable[tuple[TopicPartition, int]]
    ) -> dict[TopicPartition, int]:
        """Next offsets to commit that moved since the last `committed` call, given the next
        offset to read of each topic-partition and the offsets of the events still held."""
        safe = dict(read_to)
        for tp, offset in held:
            if offset < safe.get(tp, offset + 1):
                safe[tp] = offset
        return {tp: o for tp, o in safe.items() if self._committed.get(tp) != o}

    def committed(self, offsets: dict[TopicPartition, int]) -> int:
        """Record offsets as committed; returns how many records they moved past."""
        moved = sum(o - self._committed.get(tp, o) for tp, o in offsets.items())
        self._committed.update(offsets)
        return moved

    def forget(self, tp: TopicPartition) -> None:
        self._committed.pop(tp, None)


def unread(read_to: int | None, highwater: int | None, paused: bool) -> bool | None:
    """Whether a topic-partition may have records not read yet (None: not known yet).

    A high watermark past what was read says so. A paused one may have them whatever its
    last fetch said: it is not fetched, so its high watermark is as old as its pause, and a
    producer may be writing it right now (the embedded broker also reports a partition's end
    as the offset after the first record of its last batch, so a topic paused in the middle
    of a backfill's large batch looked read to its end). What it has not read must hold its
    partition's clock like any backlog; it is resumed once its held events go."""
    if paused:
        return True
    if read_to is None or highwater is None:
        return None
    return highwater > read_to


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
        self.buffers: dict[int, MergeBuffer] = {}
        self.local: dict[int, LocalPartition] = {}
        self.owned: set[int] = set()
        self.read_to: dict[TopicPartition, int] = {}  # next offset after the last one read
        self.last_arrival: dict[int, float] = {}  # monotonic time records last came, by partition
        self.released_to: dict[int, int] = {}  # latest event time applied, by partition
        self.held: Counter[TopicPartition] = Counter()  # events held in the merge buffers
        self.progress_at: dict[int, float] = {}  # monotonic time the partition's clock last moved
        self.paused: set[TopicPartition] = set()  # not fetched while their events pile up
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
        assert self.consumer is not None
        scorer = self.scorer
        now = datetime.now(tz=UTC)
        arrived = time.monotonic()
        seen: Counter[str] = Counter()
        for tp, records in batches.items():
            if tp.partition not in self.owned:
                continue
            seen[tp.topic] += len(records)
            highwater = self.consumer.highwater(tp)
            buffer = self.buffers.setdefault(tp.partition, MergeBuffer())
            clock = scorer.clock(tp.partition)
            for record in records:
                if record.headers and is_end_marker(record.headers):
                    seen[tp.topic] -= 1  # a backfill's end marker: not an event
                    continue
                try:
                    prepared = scorer.prepare(tp.topic, record.value or b"", now)
                except Exception as exc:
                    await self._reject(exc, tp, record)
                    continue
                waiting = highwater is not None and record.offset + 1 < highwater
                clock.observe(tp.topic, prepared.fact.ts_ms, waiting, arrived)
                buffer.push(prepared.fact.ts_ms, (prepared, tp, record), arrived)
                self.held[tp] += 1
            if records:
                self.read_to[tp] = records[-1].offset + 1
                self.last_arrival[tp.partition] = arrived
        for topic, count in seen.items():
            metrics.EVENTS_IN.labels(topic).inc(count)

        changed: dict[str, UserState] = {}
        scored: Counter[str] = Counter()
        duplicates: Counter[str] = Counter()
        mono = time.monotonic()
        hold_until = mono - self.settings.merge_max_hold_seconds
        for partition in sorted(self.owned):
            buffer = self.buffers.setdefault(partition, MergeBuffer())
            clock = scorer.clock(partition)
            self._refresh_waiting(partition, clock, mono)
            if len(buffer):
                waited = buffer.waited_since(hold_until)
                if clock.unknown and waited:
                    # A topic that never showed up must not hold the partition any longer.
                    log.warning(
                        "partition %d: %s not seen for %.0f s; %d events go without them",
                        partition, sorted(clock.unknown), self.settings.merge_max_hold_seconds,
                        len(buffer),
                    )  # fmt: skip
                    clock.give_up_unknown()

                # The clock for each arrival time (a batch's events share one), once.
                values: dict[float, int | None] = {}

                def ready(
                    ts: int,
                    arrival: float,
                    clock: PartitionClock = clock,
                    values: dict[float, int | None] = values,
                ) -> bool:
                    if arrival in values:
                        value = values[arrival]
                    else:
                        value = values[arrival] = clock.value(mono, since=arrival)
                    return value is not None and ts <= value

                # Held events wait as long as the partition's clock moves or its topics have
                # records to read (a backlog of live events is replayed while the few orders
                # of the same days wait); only a clock stalled for MERGE_MAX_HOLD_SECONDS with
                # nothing left to read lets them go without it.
                stalled = self.progress_at.setdefault(partition, mono) < hold_until
                stalled = stalled and not self._records_waiting(partition)
                forced = hold_until if stalled and waited else None
                if forced is not None:
                    metrics.MERGE_FORCED.inc()
                    log.warning(
                        "partition %d: %d events held over %.0f s go without the event clock "
                        "(held by topic: %s)", partition, len(buffer),
                        self.settings.merge_max_hold_seconds,
                        {tp.topic: n for tp, n in self.held.items() if tp.partition == partition},
                    )  # fmt: skip
                releasing = buffer.release_while(ready, forced)
                if releasing:  # in event-time order: the last is the latest
                    latest_ts = releasing[-1][0]
                    if latest_ts > self.released_to.get(partition, latest_ts - 1):
                        self.released_to[partition] = latest_ts
                        self.progress_at[partition] = mono
                apply_event = scorer.apply_event
                for _, (held, tp, record) in releasing:
                    self.held[tp] -= 1
                    try:
                        outcome = apply_event(held, partition, now, document=False)
                    except Exception as exc:
                        await self._reject(exc, tp, record)
                        continue
                    if outcome.duplicate:
                        duplicates[tp.topic] += 1
                        if outcome.duplicate_order:
                            metrics.DUPLICATE_ORDERS.labels(tp.topic).inc()
                    else:
                        scored[tp.topic] += 1
                    self._record(outcome, changed)
                    if outcome.fired or outcome.room_comment is not None:
                        await self._send_outputs(outcome)
            # Idle users whose silent or churned time has come, up to the time known safe: no
            # later than an event released, or than every topic quiet since the last arrival.
            safe = clock.value(mono, since=self.last_arrival.get(partition))
            released = self.released_to.get(partition)
            if released is not None and (safe is None or released > safe):
                safe = released
            if safe is not None:
                for swept in scorer.sweep(partition, now, documents=False, clock_ms=safe):
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
        self._balance()
        metrics.HELD_EVENTS.set(sum(len(b) for b in self.buffers.values()))
        latest = scorer.event_clock_ms()
        if latest is not None:
            metrics.EVENT_CLOCK.set(latest / 1000)

    def fetch_timeout_ms(self) -> int:
        """Until just after the caught-up hold of a partition's oldest held event ends (when
        no record comes first): a topic lets go once a fetch answered after the hold found
        nothing new, and the consumer fetches a topic read to its end every
        `FETCH_WAIT_MS`. So an event goes when its hold is over, not at the next round."""
        hold, now = self.settings.merge_caught_up_hold_seconds, time.monotonic()
        left = [
            max(0.0, oldest + hold - now)
            for buffer in self.buffers.values()
            if (oldest := buffer.oldest_arrival()) is not None
        ]
        if not left:
            return 100
        return max(1, min(100, math.ceil(min(left) * 1000) + 2 * FETCH_WAIT_MS))

    def _records_waiting(self, partition: int) -> bool:
        """Whether a topic of the partition has records not read yet: then its clock stands
        still only until the consumer gets to them (it serves partitions unevenly)."""
        assert self.consumer is not None
        for topic in self.settings.input_topics:
            tp = TopicPartition(topic, partition)
            read_to, highwater = self.read_to.get(tp), self.consumer.highwater(tp)
            if read_to is not None and highwater is not None and highwater > read_to:
                return True
        return False

    def _balance(self) -> None:
        """Stop fetching a topic-partition whose events pile up waiting for the partition's
        other topics (more than a batch of them), so the consumer fetches the slower ones;
        resume it once its pile is down to half."""
        assert self.consumer is not None
        limit = self.settings.batch_max_records
        pause = [tp for tp, n in self.held.items() if n > limit and tp not in self.paused]
        resume = [tp for tp in self.paused if self.held.get(tp, 0) <= limit // 2]
        if pause:
            log.info("pausing %s: their events wait for the other topics", pause)
            self.consumer.pause(*pause)
            self.paused.update(pause)
        if resume:
            self.consumer.resume(*resume)
            self.paused.difference_update(resume)
        metrics.PAUSED_PARTITIONS.set(len(self.paused))

    def _refresh_waiting(self, partition: int, clock: PartitionClock, mono: float) -> None:
        """Whether each topic of the partition has records not read yet (`unread`)."""
        assert self.consumer is not None
        to_mono = time.monotonic() - time.time()
        for topic in self.settings.input_topics:
            tp = TopicPartition(topic, partition)
            waiting = unread(self.read_to.get(tp), self.consumer.highwater(tp), tp in self.paused)
            if waiting is not None:
                clock.set_waiting(topic, waiting, mono)
            polled_ms = self.consumer.last_poll_timestamp(tp)
            if polled_ms is not None:
                clock.polled(topic, polled_ms / 1000 + to_mono)

    def _record(self, outcome: Outcome, changed: dict[str, UserState]) -> None:
        """An outcome's rows to the sink, its metrics, and its user among the changed ones."""
        self.sink.add_many(outcome.rows)
        for table, row in outcome.rows:
            if table == "trigger_outcomes":
                metrics.TRIGGER_OUTCOMES.labels(row["rule"], row["outcome"]).inc()
        for transition in outcome.transitions:
            metrics.TRANSITIONS.labels(transition.from_stage or "", transition.to_stage).inc()
            if transition.is_reactivation:
                metrics.REACTIVATIONS.inc()
        if outcome.user is not None and not outcome.duplicate:
            changed[outcome.user.user_id] = outcome.user

    async def _send_outputs(self, outcome: Outcome) -> None:
        """An outcome's triggers, and its live comment for the room rules."""
        await self._fire(outcome.fired)
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
        held = (
            (tp, record.offset)
            for buffer in self.buffers.values()
            for _, tp, record in buffer.items()
        )
        offsets = self.offsets.to_commit(self.read_to, held)
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
                    self.buffers.pop(tp.partition, MergeBuffer()).clear()
                    self.held.pop(tp, None)
                    self.paused.discard(tp)
                    self.offsets.forget(tp)
                    self.read_to.pop(tp, None)
                    self.last_arrival.pop(tp.partition, None)
                    self.released_to.pop(tp.partition, None)
                    self.progress_at.pop(tp.partition, None)
                    self.scorer.clocks.pop(tp.partition, None)

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
                self.buffers[partition] = MergeBuffer()
                self.scorer.clocks.pop(partition, None)
                await self._resolve_caught_up(partition)
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

    async def _resolve_caught_up(self, partition: int) -> None:
        """Input topics with nothing to read on this partition do not hold its clock."""
        assert self.consumer is not None
        tps = [TopicPartition(topic, partition) for topic in self.settings.input_topics]
        ends = await self.consumer.end_offsets(tps)
        begins = await self.consumer.beginning_offsets(tps)
        clock = self.scorer.clock(partition)
        now = time.monotonic()
        for tp in tps:
            committed = await self.consumer.committed(tp)
            position = begins[tp] if committed is None else committed
            self.read_to[tp] = position
            self.offsets.committed({tp: position})
            if position >= ends[tp]:
                clock.resolve(tp.topic, now)
