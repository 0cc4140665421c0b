"""The scoring agent: every input event updates its user's state and publishes the new scores.

Events are validated on arrival (bad ones go to dead-letters at once), then held per partition
until the partition's event clock passes them, so each user's events from the four topics are
applied in event-time order. Offsets are acknowledged only once an event is applied, so a
crash never skips an event that was held.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any

import faust

from pipeline import metrics
from pipeline.app import Wiring
from pipeline.dead_letters import dead_letter
from pipeline.domain.watermark import MergeBuffer
from pipeline.scorer import Outcome, Prepared, Scorer
from pipeline.settings import Settings
from schemas.validation import Rejection
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


def internal_error(exc: Exception) -> Rejection:
    log.exception("scoring failed on a message; it goes to dead-letters")
    return Rejection("internal_error", None, f"{type(exc).__name__}: {exc}")


class AckQueue:
    """Acknowledges each topic-partition's events in offset order, whatever order they were
    applied in: an offset is committed only once every earlier one is applied."""

    def __init__(self) -> None:
        self._queues: dict[Any, deque[list[Any]]] = defaultdict(deque)
        self._entries: dict[int, list[Any]] = {}

    def arrived(self, event: Any) -> None:
        entry = [event, False]
        self._queues[event.message.tp].append(entry)
        self._entries[id(event)] = entry

    def done(self, event: Any) -> list[Any]:
        """Mark the event applied; returns the events now safe to acknowledge, in order."""
        entry = self._entries.pop(id(event), None)
        if entry is None:
            return []
        entry[1] = True
        queue = self._queues[event.message.tp]
        ready = []
        while queue and queue[0][1]:
            ready.append(queue.popleft()[0])
        return ready

    def forget(self, tp: Any) -> None:
        for entry in self._queues.pop(tp, deque()):
            self._entries.pop(id(entry[0]), None)


def resolve_idle_topics(consumer: Any, scorer: Scorer, partition: int, seen: Any) -> int | None:
    """Input topics of the partition not seen since the start that have nothing to read
    (empty, or all committed) stop holding its clock; returns the clock."""
    clock = scorer.clocks[partition]
    committed = getattr(consumer, "_committed_offset", {})
    for topic in list(clock.unknown):
        tp = seen._replace(topic=topic)
        highwater = consumer.highwater(tp)
        done = committed.get(tp)
        if highwater is not None and (highwater == 0 or (done is not None and done >= highwater)):
            clock.resolve(topic)
    return clock.value()


def register(wiring: Wiring, settings: Settings, sink: BatchingSink) -> Scorer:
    """Attach the scoring agent to the app; returns its scorer."""
    scorer = Scorer(settings, wiring.users, expected_topics=settings.input_topics)
    buffers: dict[int, MergeBuffer] = {}
    acks = AckQueue()
    inputs = set(settings.input_topics)

    async def reject(exc: Exception, message: Any) -> None:
        rejection = exc if isinstance(exc, Rejection) else internal_error(exc)
        metrics.DEAD_LETTERS.labels(message.topic, rejection.reason).inc()
        record = dead_letter(
            rejection, message.topic, message.partition, message.offset, message.key, message.value
        )
        await wiring.dead_letters.send(key=message.key, value=record)

    async def publish(outcome: Outcome) -> None:
        document = outcome.document
        for table, row in outcome.rows:
            sink.add(table, row)
        if document is None:
            return
        await wiring.scores.send(
            key=document.user_id.encode(), value=document.model_dump_json().encode()
        )
        for transition in outcome.transitions:
            metrics.TRANSITIONS.labels(transition.from_stage or "", transition.to_stage).inc()
            if transition.is_reactivation:
                metrics.REACTIVATIONS.inc()

    async def apply(stream: Any, prepared: Prepared, event: Any) -> None:
        message = event.message
        try:
            outcome = scorer.apply_event(prepared, message.partition)
        except Exception as exc:
            await reject(exc, message)
        else:
            if outcome.duplicate:
                metrics.DUPLICATES.labels(message.topic).inc()
            else:
                metrics.EVENTS_SCORED.labels(message.topic).inc()
            await publish(outcome)
        for done in acks.done(event):
            await stream.ack(done)

    @wiring.app.on_partitions_revoked.connect
    async def _revoked(_app: faust.App, revoked: set[Any], **_: Any) -> None:
        # Held events of a revoked partition are not acknowledged: its new owner reads them.
        for tp in revoked:
            if tp.topic in inputs:
                buffers.pop(tp.partition, MergeBuffer()).clear()
                scorer.forget_partition(tp.partition)
                acks.forget(tp)

    @wiring.app.agent(wiring.inputs, name="score-events")
    async def score_events(stream: faust.StreamT[bytes]) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            topic, partition = message.topic, message.partition
            metrics.EVENTS_IN.labels(topic).inc()
            acks.arrived(event)
            try:
                prepared = scorer.prepare(topic, message.value or b"")
            except Exception as exc:
                await reject(exc, message)
                for done in acks.done(event):
                    await manual.ack(done)
                continue
            consumer = wiring.app.consumer
            waiting = message.offset + 1 < consumer.highwater(message.tp)
            clock = scorer.observe(partition, topic, prepared.fact.ts_ms, waiting)
            if clock is None:
                clock = resolve_idle_topics(consumer, scorer, partition, message.tp)
            buffer = buffers.setdefault(partition, MergeBuffer())
            now = time.monotonic()
            buffer.push(prepared.fact.ts_ms, (prepared, event), now)
            hold_until = now - settings.merge_max_hold_seconds
            if clock is None and buffer.waited_since(hold_until):
                # A topic that never showed up must not hold the partition any longer.
                clock = scorer.clocks[partition].give_up_unknown()
            released = buffer.release(clock, hold_until=hold_until)
            for held, held_event in released:
                await apply(manual, held, held_event)
            metrics.HELD_EVENTS.set(sum(len(b) for b in buffers.values()))
            # Idle users of this partition whose silent/churned time has come on its clock.
            for swept in scorer.sweep(partition):
                await publish(swept)
            latest = scorer.event_clock_ms()
            if latest is not None:
                metrics.EVENT_CLOCK.set(latest / 1000)

    return scorer
