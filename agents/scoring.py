"""The scoring agent: every input event updates its user's state and publishes the new scores.

Events are validated on arrival (bad ones go to dead-letters at once), then held per partition
until the partition's event clock passes them, so each user's events from the four topics are
applied in event-time order. Offsets are acknowledged only once an event is applied, so a
crash never skips an event that was held.
"""

from __future__ import annotations

import logging
import time
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


def register(wiring: Wiring, settings: Settings, sink: BatchingSink) -> Scorer:
    """Attach the scoring agent to the app; returns its scorer."""
    scorer = Scorer(settings, wiring.users)
    buffers: dict[int, MergeBuffer] = {}
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
        await stream.ack(event)

    @wiring.app.on_partitions_revoked.connect
    async def _revoked(_app: faust.App, revoked: set[Any], **_: Any) -> None:
        # Held events of a revoked partition are not acknowledged: its new owner reads them.
        for tp in revoked:
            if tp.topic in inputs:
                buffers.pop(tp.partition, MergeBuffer()).clear()
                scorer.forget_partition(tp.partition)

    @wiring.app.agent(wiring.inputs, name="score-events")
    async def score_events(stream: faust.StreamT[bytes]) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            topic, partition = message.topic, message.partition
            metrics.EVENTS_IN.labels(topic).inc()
            try:
                prepared = scorer.prepare(topic, message.value or b"")
            except Exception as exc:
                await reject(exc, message)
                await manual.ack(event)
                continue
            waiting = message.offset + 1 < wiring.app.consumer.highwater(message.tp)
            clock = scorer.observe(partition, topic, prepared.fact.ts_ms, waiting)
            buffer = buffers.setdefault(partition, MergeBuffer())
            now = time.monotonic()
            buffer.push(prepared.fact.ts_ms, (prepared, event), now)
            released = buffer.release(clock, hold_until=now - settings.merge_max_hold_seconds)
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
