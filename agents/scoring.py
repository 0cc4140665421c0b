"""The scoring agent: every input event updates its user's state and publishes the new scores."""

from __future__ import annotations

import logging

import faust

from pipeline import metrics
from pipeline.app import Wiring
from pipeline.dead_letters import dead_letter
from pipeline.scorer import Outcome, Scorer
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

    async def publish(outcome: Outcome) -> None:
        document = outcome.document
        if document is None:
            return
        await wiring.scores.send(
            key=document.user_id.encode(), value=document.model_dump_json().encode()
        )
        for table, row in outcome.rows:
            sink.add(table, row)
        for transition in outcome.transitions:
            metrics.TRANSITIONS.labels(transition.from_stage or "", transition.to_stage).inc()
            if transition.is_reactivation:
                metrics.REACTIVATIONS.inc()

    @wiring.app.agent(wiring.inputs, name="score-events")
    async def score_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            topic, partition = message.topic, message.partition
            metrics.EVENTS_IN.labels(topic).inc()
            try:
                waiting = message.offset + 1 < wiring.app.consumer.highwater(message.tp)
                outcome = scorer.score(
                    topic,
                    message.value or b"",
                    partition=partition,
                    more_waiting=waiting,
                    offset=message.offset,
                )
            except Exception as exc:
                # Bad input, or a fault of ours on this input: either way the message is kept
                # in dead-letters with its bytes, and the worker goes on.
                rejection = exc if isinstance(exc, Rejection) else internal_error(exc)
                metrics.DEAD_LETTERS.labels(topic, rejection.reason).inc()
                record = dead_letter(
                    rejection, topic, partition, message.offset, message.key, message.value
                )
                await wiring.dead_letters.send(key=message.key, value=record)
                continue
            if outcome.duplicate:
                metrics.DUPLICATES.labels(topic).inc()
                for table, row in outcome.rows:
                    sink.add(table, row)
                continue
            await publish(outcome)
            metrics.EVENTS_SCORED.labels(topic).inc()
            # Idle users of this partition whose silent/churned time has come on its clock.
            for swept in scorer.sweep(partition):
                await publish(swept)
            clock = scorer.event_clock_ms()
            if clock is not None:
                metrics.EVENT_CLOCK.set(clock / 1000)

    return scorer
