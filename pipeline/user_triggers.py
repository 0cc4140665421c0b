"""User trigger rules applied to a user's state: when they fire, and what came of them.

Firing marks are kept in the user's state (and so in its changelog record): a restart or a
replay of events the state already has fires nothing again, and a replay from scratch fires
the same triggers at the same event times, with the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from pipeline.domain.facts import Fact
from pipeline.domain.history import Transition
from pipeline.domain.state import PAID, UserState
from pipeline.domain.triggers import Fired, Marks, Rule, RuleSet, Value, evaluate
from schemas.scores import ScoreDocument

MAX_RECENT_TRIGGERS = 16


def state_values(
    user: UserState, stage: str | None = None, previous: str | None = None
) -> dict[str, Value]:
    return {
        "stage": stage if stage is not None else (user.stage.value if user.stage else None),
        "previous_stage": previous,
        "order_count": user.order_count,
        "refund_count": user.refund_count,
        "interactions": user.interactions,
        "reactivations": user.reactivations,
        "monetary": user.monetary_cents / 100,
        "session_watch_seconds": user.watch_session_s,
        "sentiment": user.sentiment_label,
    }


def document_values(user: UserState, doc: ScoreDocument) -> dict[str, Value]:
    values = state_values(user)
    rfm, purchase = doc.rfm, doc.purchase
    values.update(
        rfm_class=rfm.rfm_class if rfm else None,
        segment=rfm.segment if rfm else None,
        r=rfm.r if rfm else None,
        f=rfm.f if rfm else None,
        m=rfm.m if rfm else None,
        churn_probability=doc.churn_probability,
        p_alive=purchase.p_alive if purchase else None,
        expected_purchases=purchase.expected_purchases if purchase else None,
        expected_order_value=purchase.expected_order_value if purchase else None,
        clv=purchase.clv if purchase else None,
        atv=purchase.atv if purchase else None,
        engagement=doc.engagement,
    )
    return values


@dataclass(frozen=True)
class TouchOutcome:
    """A touch or a paid order that followed a trigger: the rule's effectiveness."""

    trigger_id: str
    rule: str
    outcome: str  # sent, opened, clicked, order
    user_id: str
    event_id: str
    at_ms: int
    amount_cents: int = 0


# A `present_from_ms` that makes every fact one of the past: nothing fires (a backfill's events).
NEVER = 2**62


class UserTriggers:
    """Evaluates the user rules of a rule set against one user at a time."""

    def __init__(self, rules: RuleSet, max_age_ms: int | None = None) -> None:
        self.rules = rules
        self.on_state: tuple[Rule, ...] = tuple(r for r in rules.user_rules if not r.on_document)
        self.on_doc: tuple[Rule, ...] = tuple(r for r in rules.user_rules if r.on_document)
        self.attribution_ms = {r.name: r.attribution_ms for r in rules.user_rules}
        # Facts before this (epoch ms, set from the wall clock by `act_at`) fire nothing.
        self.present_from_ms: int | None = None
        self.max_age_ms = max_age_ms  # how old on the wall clock a fact may be and fire
        self._acting_at: datetime | None = None
        self._present_from_ms: int | None = None

    def act_at(self, now: datetime, history: bool = False) -> None:
        """Facts evaluated from now on are acted on at wall-clock time `now`: those older than
        the maximum age fire nothing, and none of `history` (a backfill's events)."""
        if history:
            self.present_from_ms = NEVER
        elif self.max_age_ms is not None:
            if now is not self._acting_at:  # (a batch's events share one `now`)
                self._acting_at = now
                self._present_from_ms = int(now.timestamp() * 1000) - self.max_age_ms
            self.present_from_ms = self._present_from_ms

    def _run(
        self,
        rules: tuple[Rule, ...],
        user: UserState,
        values: dict[str, Value],
        at_ms: int,
        past: bool = False,
    ) -> list[Fired]:
        if not rules:
            return []
        # A fact of the past (a backfill, a replay): nothing fires and no cooldown starts;
        # the rule is remembered as holding, so it does not fire later for the same fact.
        present_from = self.present_from_ms
        past = past or (present_from is not None and at_ms < present_from)
        # The marks are the user's own list and dict, changed in place.
        marks = Marks(user.held_rules, user.fired_rules)
        fired = evaluate(rules, marks, values, "user", user.user_id, at_ms, record=not past)
        if past:
            return []
        for trigger in fired:
            until = trigger.at_ms + self.attribution_ms.get(trigger.rule, 0)
            user.recent_triggers.append([trigger.id, trigger.rule, trigger.at_ms, until])
            del user.recent_triggers[:-MAX_RECENT_TRIGGERS]
        return fired

    def on_transitions(self, user: UserState, transitions: list[Transition]) -> list[Fired]:
        """Rules on the user's state at each stage change, at the time it happened."""
        fired: list[Fired] = []
        for t in transitions:
            previous = t.from_stage.value if t.from_stage else None
            values = state_values(user, t.to_stage.value, previous)
            fired += self._run(self.on_state, user, values, t.at_ms)
        return fired

    def on_event(self, user: UserState, fact: Fact, transitions: list[Transition]) -> list[Fired]:
        """Rules on the user's state after an event (and the stage change it made)."""
        own = [t for t in transitions if t.at_ms >= fact.ts_ms]
        previous = None
        if own and own[-1].from_stage is not None:
            previous = own[-1].from_stage.value
        return self._run(self.on_state, user, state_values(user, previous=previous), fact.ts_ms)

    def on_document(self, user: UserState, doc: ScoreDocument) -> list[Fired]:
        """Rules on model scores, when the user's document is computed."""
        if not self.on_doc:
            return []
        at_ms = user.clock_ms or user.last_event_ms
        if at_ms is None:
            return []
        past = self._history_only(user)
        return self._run(self.on_doc, user, document_values(user, doc), at_ms, past)

    def _history_only(self, user: UserState) -> bool:
        """The scores of a user whose latest event is a backfill's are history, however late
        the watermark moves the user on, unless the user's stage changed after that event and
        within the age of the present (a backfilled user going silent now)."""
        if not user.backfilled_latest:
            return False
        since = user.stage_since_ms
        if since is None or since <= (user.last_event_ms or 0):
            return True
        present_from = self.present_from_ms
        return present_from is not None and since < present_from

    def outcomes(
        self, user: UserState, fact: Fact, event_id: str, trigger_ref: str | None
    ) -> list[TouchOutcome]:
        """Touches answering a trigger, and paid orders inside a trigger's window."""
        recent = user.recent_triggers
        out: list[TouchOutcome] = []
        if trigger_ref is not None and fact.type.startswith("touch_"):
            rule = next((r[1] for r in recent if r[0] == trigger_ref), "")
            kind = fact.type.removeprefix("touch_")
            out.append(TouchOutcome(trigger_ref, rule, kind, user.user_id, event_id, fact.ts_ms))
        elif fact.type == PAID:
            for trigger, rule, at_ms, until in recent:
                if at_ms <= fact.ts_ms <= until:
                    out.append(
                        TouchOutcome(
                            trigger,
                            rule,
                            "order",
                            user.user_id,
                            event_id,
                            fact.ts_ms,
                            fact.amount_cents,
                        )
                    )
        if recent:
            newest = user.last_event_ms or fact.ts_ms
            recent[:] = [r for r in recent if r[3] >= newest]
        return out


def encode_trigger(fired: Fired, now: datetime) -> bytes:
    """The `lifecycle-triggers` record of a fired trigger (see schemas.triggers.Trigger)."""
    return orjson.dumps(
        {
            "id": fired.id,
            "rule": fired.rule,
            "action": fired.action,
            "subject_type": fired.subject_type,
            "subject_id": fired.subject_id,
            "reason": fired.reason,
            "at": datetime.fromtimestamp(fired.at_ms / 1000, tz=UTC),
            "at_ms": fired.at_ms,
            "fired_at": now,
        }
    )


def trigger_row(fired: Fired, now: datetime) -> dict[str, Any]:
    return {
        "id": fired.id,
        "rule": fired.rule,
        "action": fired.action,
        "subject_type": fired.subject_type,
        "subject_id": fired.subject_id,
        "reason": orjson.dumps(fired.reason).decode(),
        "at": datetime.fromtimestamp(fired.at_ms / 1000, tz=UTC),
        "at_ms": fired.at_ms,
        "fired_at": now,
        "fired_ms": int(now.timestamp() * 1000),
    }


def outcome_row(outcome: TouchOutcome, now: datetime) -> dict[str, Any]:
    return {
        "trigger_id": outcome.trigger_id,
        "rule": outcome.rule,
        "outcome": outcome.outcome,
        "user_id": outcome.user_id,
        "event_id": outcome.event_id,
        "at": datetime.fromtimestamp(outcome.at_ms / 1000, tz=UTC),
        "at_ms": outcome.at_ms,
        "amount_base": Decimal(outcome.amount_cents).scaleb(-2),
        "recorded_at": now,
    }
