"""What goes into scoring an event and what comes out: the validated event, the outcome with
its rows and triggers, and score documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pipeline.domain.document import score_document
from pipeline.domain.facts import AmountOutOfRange, Fact, to_fact
from pipeline.domain.history import Transition
from pipeline.domain.state import UserState
from pipeline.domain.triggers import Fired
from pipeline.enrich import Enricher
from pipeline.held_refunds import LateDeadLetter
from pipeline.rows import score_row, transition_row
from pipeline.settings import Settings
from pipeline.user_triggers import UserTriggers, encode_trigger, trigger_row
from schemas.events import AnyEvent, Kind
from schemas.scores import ScoreDocument
from schemas.validation import INVALID_AMOUNT, UNKNOWN_TOPIC, Rejection


class RoomComment(NamedTuple):
    """A live comment, for the room rules (which see a room's comments from every user)."""

    room_id: str
    event_id: str
    ts_ms: int
    negative: bool
    user_id: str


class Prepared(NamedTuple):
    """A validated event, ready to apply."""

    topic: str
    event: AnyEvent
    fact: Fact


@dataclass
class Outcome:
    """What scoring one event (or one sweep of a user) produced.

    `user` is the user it changed; its score document comes with it when asked for at once,
    or later from `Scorer.documents` for all the users a batch changed (computed once each).
    """

    document: ScoreDocument | None
    transitions: list[Transition]
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    duplicate: bool = False
    duplicate_order: bool = False  # a payment of an order already paid, under a new event id
    history_gap: bool = False  # too late to derive the history again (counts stay exact)
    user: UserState | None = None
    fired: list[tuple[Fired, bytes]] = field(default_factory=list)
    room_comment: RoomComment | None = None
    held: bool = False  # a refund held until its order's payment comes (held_refunds.py)
    released: int = 0  # held refunds applied with this outcome (after their payment)
    dead_letters: list[LateDeadLetter] = field(default_factory=list)  # held ones refused

    def merge(self, other: Outcome) -> None:
        """Another outcome of the same user (a released refund) into this one."""
        self.transitions += other.transitions
        self.rows += other.rows
        self.fired += other.fired
        self.history_gap = self.history_gap or other.history_gap
        self.released += 1


class Preparer:
    """Validates messages of the input topics into events and their domain facts."""

    def __init__(self, settings: Settings) -> None:
        self.validator = settings.validator()
        self.fx_rates = settings.fx_rates
        self.topic_kinds: dict[str, Kind] = dict(
            zip(settings.input_topics, ("live", "chat", "order", "touch"), strict=True)
        )

    def prepare(self, topic: str, raw: bytes, now: datetime | None = None) -> Prepared:
        """Validate one message of an input topic; raises Rejection (`unknown_topic`, the
        validator's reasons, `invalid_amount` beyond the bound in the base currency)."""
        kind = self.topic_kinds.get(topic)
        if kind is None:
            raise Rejection(UNKNOWN_TOPIC, None, f"{topic} is not an input topic")
        now = now or datetime.now(tz=UTC)
        event = self.validator.validate(kind, raw, int(now.timestamp() * 1000))
        try:
            return Prepared(topic, event, to_fact(event, self.fx_rates))
        except AmountOutOfRange as exc:
            raise Rejection(INVALID_AMOUNT, "amount", str(exc)) from exc


def encoded(fired: list[Fired], now: datetime) -> list[tuple[Fired, bytes]]:
    """Fired triggers with their records for `lifecycle-triggers`."""
    return [(f, encode_trigger(f, now)) for f in fired]


class Publication:
    """Score documents of users, and the rows and triggers that go with an outcome."""

    def __init__(self, currency: str, enricher: Enricher, triggers: UserTriggers) -> None:
        self.currency = currency
        self.enricher = enricher
        self.triggers = triggers

    def document(self, user: UserState, now: datetime) -> ScoreDocument:
        """The user's score document as of the user's own event clock."""
        at_ms = user.clock_ms or user.last_event_ms or int(now.timestamp() * 1000)
        derived = self.enricher.derive(user, at_ms)
        return score_document(user, self.currency, now, derived)

    def documents(
        self, users: list[UserState], now: datetime
    ) -> list[tuple[ScoreDocument, dict[str, Any], list[tuple[Fired, bytes]]]]:
        """Documents and `user_scores` rows of users, once per user, with the triggers of
        rules on model scores that fired on them."""
        out = []
        for user in users:
            document = self.document(user, now)
            fired = encoded(self.triggers.on_document(user, document), now)
            out.append((document, score_row(document), fired))
        return out

    def outcome(
        self,
        user: UserState,
        transitions: list[Transition],
        now: datetime,
        document: bool,
        fired: list[Fired],
    ) -> Outcome:
        """The user's outcome: `stage_transitions` rows (at the user's version), the
        document if asked for, and the triggers' rows."""
        if not (transitions or document or fired):  # most events: nothing but the event row
            return Outcome(document=None, transitions=transitions, user=user)
        rows: list[tuple[str, dict[str, Any]]] = [
            ("stage_transitions", transition_row(t, now, user.version)) for t in transitions
        ]
        outcome = Outcome(document=None, transitions=transitions, rows=rows, user=user)
        if document:
            self.with_document(outcome, user, now)
        records = encoded(fired, now)
        outcome.fired[:0] = records
        rows += [("triggers", trigger_row(f, now)) for f, _ in records]
        return outcome

    def with_document(self, outcome: Outcome, user: UserState, now: datetime) -> None:
        """The user's document into the outcome, with the triggers of rules on it."""
        doc = outcome.document = self.document(user, now)
        outcome.rows.append(("user_scores", score_row(doc)))
        fired = encoded(self.triggers.on_document(user, doc), now)
        outcome.fired += fired
        outcome.rows += [("triggers", trigger_row(f, now)) for f, _ in fired]
