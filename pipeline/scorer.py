"""Turns one raw message into state changes and outputs; no transport, so it is testable alone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pipeline.dedup import Dedup
from pipeline.domain import orders
from pipeline.domain.facts import Fact, event_digest, to_fact
from pipeline.domain.history import advance
from pipeline.domain.sentiment import classify
from pipeline.domain.stages import StageRules
from pipeline.domain.state import PAID, UserState, apply
from pipeline.domain.triggers import Fired, RuleSet, load_rules
from pipeline.enrich import Enricher
from pipeline.held_refunds import HeldRefunds
from pipeline.outcome import Outcome, Prepared, Preparer, Publication, RoomComment
from pipeline.rows import event_row
from pipeline.settings import Settings
from pipeline.store import UserStore
from pipeline.stream.clocks import PartitionClocks
from pipeline.user_triggers import UserTriggers, outcome_row
from schemas.order import OrderEvent
from schemas.scores import ScoreDocument
from schemas.validation import Rejection

log = logging.getLogger(__name__)


def _verdict(user: UserState, fact: Fact) -> orders.Verdict:
    """The order ledger's verdict on an event; raises Rejection."""
    try:
        return orders.check(user, fact)
    except orders.OrderRefused as exc:
        raise Rejection(exc.reason, "order_id", exc.detail) from exc


def rules_from(settings: Settings) -> StageRules:
    return StageRules(
        active_window_days=settings.active_window_days,
        active_min_interactions=settings.active_min_interactions,
        new_window_days=settings.new_window_days,
        silent_after_days=settings.silent_after_days,
        churned_after_days=settings.churned_after_days,
    )


class Scorer:
    """Applies events to the per-user state of a `UserStore`."""

    def __init__(
        self,
        settings: Settings,
        store: UserStore | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules_from(settings)
        self.rule_set = rules if rules is not None else load_rules(settings.triggers_file)
        self.triggers = UserTriggers(self.rule_set, int(settings.trigger_max_age_seconds * 1000))
        self.preparer = Preparer(settings)
        # Validate one message of an input topic (`Preparer.prepare`); raises Rejection.
        self.prepare = self.preparer.prepare
        self.order_limits = orders.OrderLimits(
            horizon_ms=int(settings.order_ledger_days * 86_400_000),
            max_orders=settings.order_ledger_max_orders,
        )
        self.dedup = Dedup(settings)
        self.lateness_ms = int(settings.lateness_seconds * 1000)
        self.store = store if store is not None else UserStore()
        self.enricher = Enricher(settings)
        self.held = HeldRefunds(self.lateness_ms, settings.topic_order)
        # Watermark and stage timers per input partition; rebuilt from state after a restart.
        self.clocks = PartitionClocks(
            settings.input_topics, self.rules, self.store, self._first_use
        )
        self.watermark = self.clocks.watermark
        self.adopt_partition = self.clocks.adopt
        # The latest partition watermark of this scorer (epoch ms), for the metric.
        self.event_clock_ms = self.clocks.latest
        self.publication = Publication(settings.base_currency, self.enricher, self.triggers)
        # The user's score document as of the user's own event clock.
        self.document = self.publication.document
        # Users whose documents are written again with the next batch (silent users, once a
        # ready churn model of a new version is in use).
        self.rescore: set[str] = set()

    def _load(self, user_id: str) -> UserState:
        user = self.store.get(user_id)
        return user if user is not None else UserState(user_id)

    def _first_use(self, partition: int, users: list[UserState]) -> None:
        """A partition's users, the first time it is used in this process: their held
        refunds are found and they are entered in the population models."""
        self.held.adopt(partition, users)
        for user in users:
            self.enricher.track(user)

    def sweep(
        self,
        partition: int,
        now: datetime | None = None,
        documents: bool = True,
        clock_ms: int | None = None,
    ) -> list[Outcome]:
        """Advance the users of a partition whose stage fell due by its watermark.

        Users who send nothing still go silent and churned, at the exact time the rule fires.
        `clock_ms` overrides the partition's watermark.
        """
        now = now or datetime.now(tz=UTC)
        self.triggers.act_at(now)
        timers = self.clocks.timers(partition)
        outcomes: list[Outcome] = []
        clock = clock_ms if clock_ms is not None else self.clocks.value(partition)
        if clock is None:
            return outcomes
        expired = self.held.expire(partition, self.store, clock)
        if expired:
            outcomes.append(Outcome(document=None, transitions=[], dead_letters=expired))
        # Settled strictly before the watermark: another topic of the partition may still
        # bring an event stamped at the watermark's own time, and it is on time.
        clock -= 1
        for user_id in timers.pop_due(clock):
            user = self._load(user_id)
            transitions = advance(user, self.rules, clock)
            self.enricher.on_transitions(user, transitions)
            self.clocks.schedule(partition, user, clock)
            if not transitions:
                continue
            fired = self.triggers.on_transitions(user, transitions)
            user.version += 1
            self.store.put(user, partition)
            outcomes.append(self.publication.outcome(user, transitions, now, documents, fired))
        return outcomes

    def documents(
        self, users: list[UserState], now: datetime
    ) -> list[tuple[ScoreDocument, dict[str, Any], list[tuple[Fired, bytes]]]]:
        """Documents and `user_scores` rows of users changed by a batch, once per user, with
        the triggers of rules on model scores that fired on them (and their `triggers` rows,
        which the caller writes)."""
        self.triggers.act_at(now)
        return self.publication.documents(users, now)

    def apply_event(
        self,
        prepared: Prepared,
        partition: int = 0,
        now: datetime | None = None,
        document: bool = True,
        history: bool = False,
    ) -> Outcome:
        """Apply one validated event to its user (with its score document unless `document`
        is false: a batch asks `documents` once per changed user instead). An event of
        `history` (a backfill's) fires no trigger, whatever its time.

        A duplicate (an event id the user already had within the horizon: a resend, or a
        replay after a crash) changes nothing and comes back with `duplicate` set; so does a
        payment of an order already paid (`duplicate_order`). The id is remembered in the same
        state record as the event's effect, so the two cannot part.

        A refund of an order the ledger does not hold is held until its payment comes
        (`held` set; `pipeline.held_refunds`); the payment's outcome then carries it
        (`released`), as if the two had come in event-time order.

        Raises Rejection: `conflicting_duplicate` for an event id the user had with another
        payload (a producer reusing ids), `unknown_order` for a refund whose payment cannot
        come on time any more or that is dated before its payment, `conflicting_order` for an
        order paid again with another amount. The state is unchanged then.
        """
        now = now or datetime.now(tz=UTC)
        topic, event, fact = prepared
        user = self._load(event.user_id)
        digest = event_digest(event.event_id)
        if self.dedup.seen(user, digest, fact, event.event_id):
            # A resend, or a replay after a crash: the state has it already. Its row is written
            # again (the table collapses repeated rows), in case a crash lost the sink's buffer.
            rows = [("events", event_row(topic, event, fact, now))]
            return Outcome(document=None, transitions=[], rows=rows, duplicate=True)
        verdict = _verdict(user, fact)
        if verdict == "duplicate_order":
            # The same payment under a new event id: nothing changes, and no row is written
            # (the events table would count the order twice). Its id is remembered, so a
            # resend of it is a plain duplicate.
            self.dedup.remember(user, digest, fact, self.watermark(partition).value())
            self.store.put(user, partition)
            return Outcome(document=None, transitions=[], duplicate=True, duplicate_order=True)
        if verdict == "unpaid":
            mark = self.watermark(partition).value()
            self.held.hold(user, fact, event.model_dump_json(), partition, mark)
            self.dedup.remember(user, digest, fact, mark)
            self.store.put(user, partition)
            return Outcome(document=None, transitions=[], held=True)
        if fact.type != PAID or fact.order_id not in user.held_refunds:
            return self._apply(prepared, user, digest, partition, now, document, history)
        outcome = self._apply(prepared, user, digest, partition, now, False, history)
        for held in self.held.release(user, fact.order_id, partition):
            refund = OrderEvent.model_validate_json(held)
            released = Prepared(topic, refund, to_fact(refund, self.settings.fx_rates))
            try:
                _verdict(user, released.fact)  # dated before the payment: unknown_order
            except Rejection as exc:
                dead = self.held.dead_letter(user.user_id, partition, held, exc)
                outcome.dead_letters.append(dead)
                continue
            outcome.merge(self._apply(released, user, None, partition, now, False, history))
        if document:
            self.publication.with_document(outcome, user, now)
        return outcome

    def _apply(
        self,
        prepared: Prepared,
        user: UserState,
        digest: int | None,
        partition: int,
        now: datetime,
        document: bool,
        history: bool,
    ) -> Outcome:
        """A checked event to its user (its id remembered, unless `digest` is None: a
        released refund's was when it was held)."""
        topic, event, fact = prepared
        self.clocks.timers(partition)  # this partition's users are in the population models
        self.triggers.act_at(now, history)
        latest = user.last_event_ms
        idle = advance(user, self.rules, fact.ts_ms - 1)  # stage changes due before the event
        fired = self.triggers.on_transitions(user, idle)
        gaps = user.history_gaps
        watermark = self.watermark(partition)
        mark = watermark.value()
        # While a backfill runs its topics are read far apart (a sparse topic's records come
        # in large batches): keep every interaction time (up to the cap) until it ends.
        keep_from = None if mark is None or watermark.backfilling else mark - self.lateness_ms
        own = apply(user, fact, self.rules, self.order_limits, keep_from)
        if latest is None or fact.ts_ms >= latest:  # rules on its scores fire for live ones
            tie = latest == fact.ts_ms
            user.backfilled_latest = history and (user.backfilled_latest or not tie)
        transitions = idle + own
        # Corrections of the history (a late event) are rows and records, not facts to act on.
        current = [t for t in own if not t.retracted]
        label = self.enricher.on_event(user, fact)
        self.enricher.on_transitions(user, transitions)
        # What earlier triggers led to (before this event can fire one of its own).
        touch_outcomes = self.triggers.outcomes(
            user, fact, event.event_id, event.__dict__.get("trigger_id")
        )
        fired += self.triggers.on_transitions(user, [t for t in current if t.at_ms < fact.ts_ms])
        fired += self.triggers.on_event(user, fact, [t for t in current if t.at_ms >= fact.ts_ms])
        if digest is not None:
            self.dedup.remember(user, digest, fact, mark)
        self.store.put(user, partition)
        self.clocks.schedule(partition, user, user.clock_ms or fact.ts_ms)
        outcome = self.publication.outcome(user, transitions, now, document, fired)
        outcome.history_gap = user.history_gaps > gaps
        outcome.rows.insert(0, ("events", event_row(topic, event, fact, now)))
        outcome.rows += [("trigger_outcomes", outcome_row(o, now)) for o in touch_outcomes]
        if fact.type == "comment" and fact.room_id is not None and fact.text is not None:
            label = label or classify(fact.text).label
            outcome.room_comment = RoomComment(
                fact.room_id, event.event_id, fact.ts_ms, label == "negative", user.user_id
            )
        return outcome

    def score(
        self,
        topic: str,
        raw: bytes,
        now: datetime | None = None,
        partition: int = 0,
        backfill: bool = False,
    ) -> Outcome:
        """Validate and apply one message, and move its partition's watermark; raises
        Rejection."""
        prepared = self.prepare(topic, raw, now)
        outcome = self.apply_event(prepared, partition, now, history=backfill)
        self.watermark(partition).observe(topic, prepared.fact.ts_ms, backfill)
        return outcome

    def erase(self, user_id: str) -> bool:
        """Forget a person (erasure): state, stage timers, the population models' count of
        them, a pending rescore; the changelog tombstone goes with the next checkpoint.
        Returns whether any state of theirs was here."""
        partition = self.store.remove(user_id)
        self.rescore.discard(user_id)
        self.enricher.untrack(user_id)
        self.held.discard(user_id)
        if partition is not None:
            self.clocks.unschedule(partition, user_id)
        return partition is not None

    def forget_partition(self, partition: int) -> None:
        """The partition moved to another worker: drop its watermark, timers and users."""
        self.clocks.forget(partition)
        self.held.forget(partition)
        for user in self.store.users_of(partition):
            self.enricher.untrack(user.user_id)
        self.store.drop_partition(partition)
