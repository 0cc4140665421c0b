"""Turns one raw message into state changes and outputs; no transport, so it is testable alone."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from pipeline.domain.document import score_document
from pipeline.domain.facts import to_fact
from pipeline.domain.stages import StageRules
from pipeline.domain.state import Fact, Transition, UserState, advance, apply, event_digest
from pipeline.domain.timers import DueTimers, next_due
from pipeline.domain.watermark import PartitionClock
from pipeline.enrich import Enricher
from pipeline.rows import event_row, score_row, transition_row
from pipeline.settings import Settings
from schemas.events import AnyEvent, Kind
from schemas.scores import ScoreDocument
from schemas.validation import Rejection, Validator

log = logging.getLogger(__name__)


class Prepared(NamedTuple):
    """A validated event, ready to apply."""

    topic: str
    event: AnyEvent
    fact: Fact


@dataclass
class Outcome:
    """What scoring one event produced."""

    document: ScoreDocument | None
    transitions: list[Transition]
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    duplicate: bool = False


def _decoded(stored: bytes | dict[str, Any]) -> dict[str, Any]:
    """A stored state: bytes as written, or a dict as Faust hands it back after recovery."""
    if isinstance(stored, dict):
        return dict(stored)
    data: dict[str, Any] = orjson.loads(stored)
    return data


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

    def __init__(
        self,
        settings: Settings,
        state: MutableMapping[str, Any],
        expected_topics: tuple[str, ...] = (),
    ) -> None:
        """`expected_topics` hold each partition's clock until seen or known idle (the worker
        passes its input topics; in-order replays pass none)."""
        self.settings = settings
        self.expected_topics = expected_topics
        self.rules = rules_from(settings)
        self.validator = Validator(
            settings.fx_rates,
            max_bytes=settings.max_message_bytes,
            future_margin_ms=int(settings.future_margin_seconds * 1000),
        )
        self.dedup_horizon_ms = int(settings.dedup_horizon_days * 86_400_000)
        self.state = state
        self.topic_kinds: dict[str, Kind] = dict(
            zip(settings.input_topics, ("live", "chat", "order", "touch"), strict=True)
        )
        # Event clock and stage timers per input partition; rebuilt from state after a restart.
        self.clocks: dict[int, PartitionClock] = {}
        self.timers: dict[int, DueTimers] = {}
        self.enricher = Enricher(settings)
        # Users whose document is published again when their partition starts here: after a
        # crash the state may hold effects whose documents never left the process.
        self._resync: list[str] = []

    def _load(self, user_id: str) -> UserState:
        stored = self.state.get(user_id)
        if not stored:
            return UserState(user_id)
        data = _decoded(stored)
        data.pop("partition", None)
        return UserState.from_dict(data)

    def _save(self, user: UserState, partition: int) -> None:
        data = user.to_dict()
        data["partition"] = partition
        self.state[user.user_id] = orjson.dumps(data)

    def _timers(self, partition: int) -> DueTimers:
        timers = self.timers.get(partition)
        if timers is None:
            timers = self.timers[partition] = DueTimers()
            for user_id, stored in list(self.state.items()):
                data = _decoded(stored)
                if data.pop("partition", None) == partition:
                    user = UserState.from_dict(data)
                    settled = max(user.stage_since_ms or 0, user.clock_ms or 0)
                    timers.schedule(user_id, next_due(user, self.rules, settled))
                    self.enricher.track(user)
                    self._resync.append(user_id)
        return timers

    def sweep(self, partition: int, now: datetime | None = None) -> list[Outcome]:
        """Advance the users of a partition whose stage fell due on its event clock.

        Users who send nothing still go silent and churned, at the exact time the rule fires.
        """
        now = now or datetime.now(tz=UTC)
        timers = self._timers(partition)
        outcomes = [self._outcome(self._load(user_id), [], now) for user_id in self._resync]
        self._resync.clear()
        partition_clock = self.clocks.get(partition)
        clock = partition_clock.value() if partition_clock else None
        if clock is None:
            return outcomes
        for user_id in timers.pop_due(clock):
            user = self._load(user_id)
            transitions = advance(user, self.rules, clock)
            self.enricher.on_transitions(user, transitions)
            timers.schedule(user_id, next_due(user, self.rules, clock))
            if not transitions:
                continue
            user.version += 1
            self._save(user, partition)
            outcomes.append(self._outcome(user, transitions, now or datetime.now(tz=UTC)))
        return outcomes

    def _outcome(self, user: UserState, transitions: list[Transition], now: datetime) -> Outcome:
        at_ms = user.clock_ms or user.last_event_ms or int(now.timestamp() * 1000)
        derived = self.enricher.derive(user, at_ms)
        document = score_document(user, self.settings.base_currency, now, derived)
        rows: list[tuple[str, dict[str, Any]]] = [
            ("stage_transitions", transition_row(t, now)) for t in transitions
        ]
        rows.append(("user_scores", score_row(document)))
        return Outcome(document=document, transitions=transitions, rows=rows)

    def event_clock_ms(self) -> int | None:
        """The latest partition clock of this scorer, for the metric."""
        values = [v for c in self.clocks.values() if (v := c.value()) is not None]
        return max(values) if values else None

    def prepare(self, topic: str, raw: bytes, now: datetime | None = None) -> Prepared:
        """Validate one message of an input topic; raises Rejection."""
        kind = self.topic_kinds.get(topic)
        if kind is None:
            raise Rejection("unknown_topic", None, f"{topic} is not an input topic")
        now = now or datetime.now(tz=UTC)
        event = self.validator.validate(kind, raw, int(now.timestamp() * 1000))
        return Prepared(topic, event, to_fact(event, self.settings.fx_rates))

    def observe(self, partition: int, topic: str, ts_ms: int, more_waiting: bool) -> int | None:
        """Move the partition's event clock; returns it."""
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = PartitionClock(self.expected_topics)
        clock.observe(topic, ts_ms, more_waiting)
        return clock.value()

    def apply_event(
        self,
        prepared: Prepared,
        partition: int = 0,
        now: datetime | None = None,
    ) -> Outcome:
        """Apply one validated event to its user.

        A duplicate (an event id the user already had within the horizon: a resend, or a
        replay after a crash) changes nothing and comes back with `duplicate` set. The id is
        remembered in the same state record as the event's effect, so the two cannot part.
        """
        now = now or datetime.now(tz=UTC)
        topic, event, fact = prepared
        user = self._load(event.user_id)
        digest = event_digest(event.event_id)
        if user.has_seen(digest):
            # A resend, or a replay after a crash: the state has it already. Its row is written
            # again (the table collapses repeated rows), in case a crash lost the sink's buffer.
            rows = [("events", event_row(topic, event, fact, now))]
            return Outcome(document=None, transitions=[], rows=rows, duplicate=True)
        self._timers(partition)  # this partition's users are in the population models
        transitions = apply(user, fact, self.rules)
        self.enricher.on_event(user, fact)
        self.enricher.on_transitions(user, transitions)
        user.remember(
            digest,
            fact.ts_ms,
            self.dedup_horizon_ms,
            self.settings.dedup_max_ids,
            self.settings.dedup_min_ids,
        )
        self._save(user, partition)
        self._timers(partition).schedule(
            user.user_id, next_due(user, self.rules, user.clock_ms or fact.ts_ms)
        )
        outcome = self._outcome(user, transitions, now)
        outcome.rows.insert(0, ("events", event_row(topic, event, fact, now)))
        return outcome

    def score(
        self,
        topic: str,
        raw: bytes,
        now: datetime | None = None,
        partition: int = 0,
        more_waiting: bool = False,
    ) -> Outcome:
        """Validate, observe and apply one message at once (no reordering); raises Rejection.

        `more_waiting` says whether the message's topic-partition has records after this one.
        """
        prepared = self.prepare(topic, raw, now)
        self.observe(partition, topic, prepared.fact.ts_ms, more_waiting)
        return self.apply_event(prepared, partition, now)

    def forget_partition(self, partition: int) -> None:
        """The partition moved to another worker: drop its clock and timers."""
        self.clocks.pop(partition, None)
        self.timers.pop(partition, None)
