"""What the scoring engine sends: triggers, stage changes, room comments, score documents and
dead letters, with the sink's rows and the metrics of each outcome.

Records go in batches (`pipeline.batched_sends`), handed to the producer at the end of each
round of the loop (`submit`). Every batch's future is kept until the next checkpoint takes them
(`take_sends`): no offset is committed before the records of the events under it are on the
broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Container
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from pipeline import metrics
from pipeline.batched_sends import BatchedSends
from pipeline.dead_letters import dead_letter
from pipeline.domain.state import UserState
from pipeline.domain.triggers import Fired
from pipeline.logs import Throttle
from pipeline.outcome import Outcome
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.user_triggers import trigger_row
from schemas.validation import INTERNAL_ERROR, Rejection
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


def internal_error(exc: Exception) -> Rejection:
    return Rejection(INTERNAL_ERROR, None, f"{type(exc).__name__}: {exc}")


class ScoringOutputs:
    """The scoring engine's records to the broker and rows to the sink."""

    def __init__(
        self, settings: Settings, scorer: Scorer, sink: BatchingSink, producer: AIOKafkaProducer
    ) -> None:
        self.settings = settings
        self.scorer = scorer
        self.sink = sink
        self.producer = producer
        self.batches = BatchedSends(producer)
        self.sends: list[asyncio.Future[Any]] = []
        self.pending_docs: dict[str, UserState] = {}  # changed users whose document is due
        # One line per input topic and reason a minute: a producer that sends nothing but bad
        # records must not flood the log (the metric counts every one).
        self.bad_records = Throttle(60.0)
        # Live events applied since documents last went out: (event time, written), epoch ms.
        self.timings: list[tuple[int, int]] = []

    async def submit(self) -> None:
        """The records added so far to the producer, in whole batches."""
        self.sends += [batch.future for batch in await self.batches.submit()]

    async def take_sends(self) -> list[asyncio.Future[Any]]:
        """The futures of the records sent since the last call (the open batches first
        submitted)."""
        await self.submit()
        sends, self.sends = self.sends, []
        return sends

    def record(self, outcome: Outcome, changed: dict[str, UserState]) -> None:
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

    async def send(self, outcome: Outcome) -> None:
        """An outcome's triggers, its stage changes and corrections (the `stage_transitions`
        rows, `valid` 0 for a retracted one), held refunds refused since they were held (to
        dead-letters, offset -1), and its live comment for the room rules."""
        await self.fire(outcome.fired)
        if outcome.transitions:
            topic = self.settings.topic_stage_changes
            for table, row in outcome.rows:
                if table == "stage_transitions":
                    await self.batches.add(topic, row["user_id"].encode(), orjson.dumps(row))
        for late in outcome.dead_letters:  # held refunds refused after they were held
            rejection = late.rejection
            metrics.DEAD_LETTERS.labels(late.topic, rejection.reason).inc()
            self.log_rejection(rejection, rejection, TopicPartition(late.topic, late.partition), -1)
            value = dead_letter(rejection, late.topic, late.partition, -1, late.key, late.value)
            await self.batches.add(self.settings.topic_dead_letters, late.key, value)
        comment = outcome.room_comment
        if comment is not None:
            await self.batches.add(
                self.settings.room_comments_topic,
                comment.room_id.encode(),
                orjson.dumps(comment._asdict()),
            )

    async def fire(self, fired: list[tuple[Fired, bytes]]) -> None:
        """Fired triggers to `lifecycle-triggers`, keyed by their subject."""
        for trigger, message in fired:
            metrics.TRIGGERS.labels(trigger.rule).inc()
            await self.batches.add(
                self.settings.topic_triggers, trigger.subject_id.encode(), message
            )

    def rescore(self, owned: Container[int], changed: dict[str, UserState]) -> None:
        """Users of the `owned` partitions whose documents are written again on newly
        published models (and fire the triggers of rules on model scores), added to
        `changed`."""
        store = self.scorer.store
        while self.scorer.rescore:
            user_id = self.scorer.rescore.pop()
            owner = store.partition_of(user_id)
            user = store.get(user_id)
            if user is None or owner is None or user_id in changed:
                continue
            if owner in owned:
                store.put(user, owner)  # the triggers it fires change its state
                changed[user_id] = user

    def hold_documents(self, changed: dict[str, UserState]) -> None:
        """Changed users whose documents go out with `publish_pending`."""
        self.pending_docs.update(changed)

    def applied(self, event_ms: int, written_ms: int) -> None:
        """A live event was applied at event time `event_ms`, written to Kafka at
        `written_ms` (epoch ms): its latency is observed when its document goes out."""
        self.timings.append((event_ms, written_ms))

    async def publish_pending(self, now: datetime) -> None:
        if self.pending_docs:
            users, self.pending_docs = list(self.pending_docs.values()), {}
            await self.publish(users, now)
        if self.timings:
            timings, self.timings = self.timings, []
            at_ms = time.time() * 1000  # now, after the sends: `now` is the batch's start
            metrics.observe_many(
                metrics.EVENT_TO_SCORE, [max(0.0, at_ms - e) / 1000 for e, _ in timings]
            )
            metrics.observe_many(
                metrics.INGEST_TO_SCORE, [max(0.0, at_ms - w) / 1000 for _, w in timings]
            )

    async def publish(self, users: list[UserState], now: datetime) -> None:
        """Each user's score document to the compacted topic, and the triggers of rules on
        model scores it fired."""
        topic = self.settings.topic_scores
        for document, row, fired in self.scorer.documents(users, now):
            self.sink.add("user_scores", row)
            for trigger, _ in fired:
                self.sink.add("triggers", trigger_row(trigger, now))
            await self.fire(fired)
            await self.batches.add(
                topic, document.user_id.encode(), document.model_dump_json().encode()
            )

    async def erase(self, user_id: str) -> asyncio.Future[Any]:
        """The person's document no longer goes out; a tombstone replaces it on the compacted
        scores topic (returns its send's future: the tombstone's own offset). The batches
        added so far go first, so no document of the person lands after it."""
        self.pending_docs.pop(user_id, None)
        await self.submit()
        future: asyncio.Future[Any] = await self.producer.send(
            self.settings.topic_scores, key=user_id.encode(), value=None
        )
        self.sends.append(future)
        return future

    async def reject(self, exc: Exception, tp: TopicPartition, record: Any) -> None:
        """The record to dead-letters with why (a Rejection, or any other error as an internal
        one)."""
        rejection = exc if isinstance(exc, Rejection) else internal_error(exc)
        metrics.DEAD_LETTERS.labels(tp.topic, rejection.reason).inc()
        self.log_rejection(rejection, exc, tp, record.offset)
        value = dead_letter(
            rejection, tp.topic, tp.partition, record.offset, record.key, record.value
        )
        await self.batches.add(self.settings.topic_dead_letters, record.key, value)

    def log_rejection(
        self, rejection: Rejection, exc: Exception, tp: TopicPartition, offset: int
    ) -> None:
        """The record's position and reason, never its value (the detail, which may quote
        it, only at DEBUG); an internal error with its cause."""
        at = f"{tp.topic}[{tp.partition}]@{offset}"
        held = self.bad_records.due((tp.topic, rejection.reason))
        if held is not None:
            more = f" ({held} more like it since the last line)" if held else ""
            dead = self.settings.topic_dead_letters
            # The same as fields of their own in JSON lines.
            extra = {
                "topic": tp.topic, "partition": tp.partition, "offset": offset,
                "reason": rejection.reason, "field": rejection.field, "held_back": held,
            }  # fmt: skip
            if isinstance(exc, Rejection):
                field = f" ({rejection.field})" if rejection.field else ""
                log.warning("the record at %s is %s%s; it goes to %s%s",
                            at, rejection.reason, field, dead, more, extra=extra)  # fmt: skip
            else:
                log.error("scoring failed on the record at %s; it goes to %s%s",
                          at, dead, more, exc_info=exc, extra=extra)  # fmt: skip
        log.debug("the record at %s is %s", at, rejection)
