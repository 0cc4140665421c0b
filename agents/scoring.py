"""The scoring agent: every input event updates its user's state and publishes the new scores."""

from __future__ import annotations

import logging
from typing import Any

import faust

from pipeline import metrics
from pipeline.app import Wiring
from pipeline.dead_letters import dead_letter
from pipeline.scorer import Rejected, Scorer
from pipeline.settings import Settings
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


def register(wiring: Wiring, settings: Settings, sink: BatchingSink) -> Any:
    """Attach the scoring agent to the app; returns the agent."""
    scorer = Scorer(settings, wiring.users)

    @wiring.app.agent(wiring.inputs, name="score-events")
    async def score_events(stream: faust.StreamT[bytes]) -> None:
        clock = 0.0
        async for event in stream.events():
            message = event.message
            topic = message.topic
            metrics.EVENTS_IN.labels(topic).inc()
            try:
                outcome = scorer.score(topic, message.value or b"")
            except Rejected as exc:
                metrics.DEAD_LETTERS.labels(topic, exc.reason).inc()
                record = dead_letter(
                    exc.reason, exc.detail, topic, message.partition, message.offset,
                    message.key, message.value,
                )
                await wiring.dead_letters.send(key=message.key, value=record)
                continue
            document = outcome.document
            await wiring.scores.send(
                key=document.user_id.encode(), value=document.model_dump_json().encode()
            )
            for table, row in outcome.rows:
                sink.add(table, row)
            for transition in outcome.transitions:
                metrics.TRANSITIONS.labels(
                    transition.from_stage or "", transition.to_stage
                ).inc()
                if transition.is_reactivation:
                    metrics.REACTIVATIONS.inc()
            metrics.EVENTS_SCORED.labels(topic).inc()
            if document.last_event_at is not None and document.last_event_at.timestamp() > clock:
                clock = document.last_event_at.timestamp()
                metrics.EVENT_CLOCK.set(clock)

    return score_events
