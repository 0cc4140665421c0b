"""Turns one raw message into state changes and outputs; no transport, so it is testable alone."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.domain.document import score_document
from pipeline.domain.facts import UnknownCurrency, to_fact
from pipeline.domain.stages import StageRules
from pipeline.domain.state import Transition, UserState, apply
from pipeline.rows import event_row, score_row, transition_row
from pipeline.settings import Settings
from schemas.events import Kind, parse_event
from schemas.scores import ScoreDocument

log = logging.getLogger(__name__)


class Rejected(ValueError):
    """The message cannot be scored; `reason` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Outcome:
    """What scoring one event produced."""

    document: ScoreDocument
    transitions: list[Transition]
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def rules_from(settings: Settings) -> StageRules:
    return StageRules(
        active_window_days=settings.active_window_days,
        active_min_interactions=settings.active_min_interactions,
        new_window_days=settings.new_window_days,
        silent_after_days=settings.silent_after_days,
        churned_after_days=settings.churned_after_days,
    )


class Scorer:
    """Applies events to per-user state kept in any mapping (a Faust table, a dict)."""

    def __init__(self, settings: Settings, state: MutableMapping[str, Any]) -> None:
        self.settings = settings
        self.rules = rules_from(settings)
        self.state = state
        self.topic_kinds: dict[str, Kind] = dict(
            zip(settings.input_topics, ("live", "chat", "order", "touch"), strict=True)
        )

    def score(self, topic: str, raw: bytes, now: datetime | None = None) -> Outcome:
        """Validate and apply one message; raises Rejected for input that cannot be scored."""
        kind = self.topic_kinds.get(topic)
        if kind is None:
            raise Rejected("unknown_topic", f"{topic} is not an input topic")
        try:
            event = parse_event(kind, raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "event"
            raise Rejected(first["type"], f"{where}: {first['msg']}") from exc
        try:
            fact = to_fact(event, self.settings.fx_rates)
        except UnknownCurrency as exc:
            raise Rejected("unknown_currency", str(exc)) from exc
        now = now or datetime.now(tz=UTC)
        stored = self.state.get(event.user_id)
        user = UserState.from_dict(orjson.loads(stored)) if stored else UserState(event.user_id)
        transitions = apply(user, fact, self.rules)
        self.state[event.user_id] = orjson.dumps(user.to_dict())
        document = score_document(user, self.settings.base_currency, now)
        rows: list[tuple[str, dict[str, Any]]] = [("events", event_row(topic, event, fact, now))]
        rows.extend(("stage_transitions", transition_row(t, now)) for t in transitions)
        rows.append(("user_scores", score_row(document)))
        return Outcome(document=document, transitions=transitions, rows=rows)
