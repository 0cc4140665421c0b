"""Per-user state and how one event changes it: pure, deterministic, on the event clock."""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.domain import orders as ledger
from pipeline.domain.facts import SEEN_TIME_MASK, Fact, packed_seen
from pipeline.domain.history import Transition, advance, move, prune, rederive, stage_now
from pipeline.domain.orders import PAID, REFUNDED, OrderLimits
from pipeline.domain.stages import Stage, StageRules

__all__ = ["PAID", "REFUNDED", "UserState", "apply"]
DEFAULT_ORDER_LIMITS = OrderLimits()


@dataclass(slots=True)
class UserState:
    """Everything kept per user; bounded in size whatever the history."""

    user_id: str
    first_seen_ms: int | None = None
    last_event_ms: int | None = None
    last_interaction_ms: int | None = None
    # The latest `kept_interactions` interaction times, oldest first (the latest of a set, so
    # the same whatever order they arrived in).
    recent_interactions_ms: list[int] = field(default_factory=list)
    interactions: int = 0
    first_paid_ms: int | None = None
    last_paid_ms: int | None = None
    order_count: int = 0
    free_orders: int = 0  # paid orders of amount 0: in frequency and recency, not order value
    refund_count: int = 0
    monetary_cents: int = 0
    paid_cents: int = 0  # gross of refunds: the order values the purchase models see
    stage: Stage | None = None
    stage_since_ms: int | None = None
    clock_ms: int | None = None  # the latest time the stage history is derived up to
    # Whether the user's latest event (by event time) came with a backfill: history, for
    # which rules on the user's scores fire nothing.
    backfilled_latest: bool = False
    reactivations: int = 0
    # The stage history that a late event may still change: [from, to, at ms], oldest first.
    history: list[list[Any]] = field(default_factory=list)
    # Late events older than the kept interactions can re-derive: counts stay exact, the
    # history before them is left as it was.
    history_gaps: int = 0
    version: int = 0
    engagement_value: float = 0.0
    engagement_at_ms: int | None = None
    sentiment_label: str | None = None
    sentiment_score: float | None = None
    sentiment_at_ms: int | None = None
    # Churn-model features taken when the user went silent, until the label is known.
    churn_snapshot: dict[str, float] | None = None
    churn_snapshot_ms: int | None = None  # the time of the silence it was taken for
    # The user's latest resolved churn labels, [event time ms, churned 0/1, features], at most
    # `MAX_CHURN_LABELS`: the churn model's training data moves with the user's partition.
    churn_labels: list[list[Any]] = field(default_factory=list)
    # The live session the user watched last (by event time) and the seconds watched in it.
    watch_session_id: str | None = None
    watch_session_s: float = 0.0
    watch_session_ms: int | None = None
    # Trigger rules whose condition held at their last evaluation, and when each last fired.
    held_rules: list[str] = field(default_factory=list)
    fired_rules: dict[str, int] = field(default_factory=dict)
    # Triggers fired for the user still inside their attribution window: [id, rule, at, until].
    recent_triggers: list[list[Any]] = field(default_factory=list)
    # Digests of recent event ids with their event times and payload digests (packed, see
    # `seen_at`), oldest first, for dropping duplicates and telling a reused id.
    seen_ids: dict[int, int] = field(default_factory=dict)
    # Recent paid orders by order_id: [cents paid, cents refunded, payment time] (orders.py).
    orders: dict[str, list[int]] = field(default_factory=dict)
    # Refunds that came before their order's payment, by order_id: [event time ms, the refund
    # as validated, JSON] (pipeline/held_refunds.py).
    held_refunds: dict[str, list[list[Any]]] = field(default_factory=dict)

    def has_seen(self, digest: int) -> bool:
        return digest in self.seen_ids

    def remember(
        self,
        digest: int,
        ts_ms: int,
        horizon_ms: int,
        max_ids: int,
        min_ids: int = 0,
        payload: int = 0,
        newest_ms: int | None = None,
        by_age: bool = True,
    ) -> None:
        """Keep the id (with its payload digest). The user's last `min_ids` ids are always
        kept, whatever their age (a replay after a crash during catch-up can span weeks of
        event time); older ones go once they fall out of the horizon before `newest_ms`
        (default: the user's newest event), unless not `by_age`; never more than
        `max_ids`."""
        seen = self.seen_ids
        seen[digest] = packed_seen(ts_ms, payload)
        newest = newest_ms
        if newest is None:
            newest = self.last_event_ms if self.last_event_ms is not None else ts_ms
        if by_age and len(seen) > min_ids:
            oldest = newest - horizon_ms
            stale = [d for d, packed in seen.items() if packed & SEEN_TIME_MASK < oldest]
            for d in stale[: len(seen) - min_ids]:
                del seen[d]
        while len(seen) > max_ids:
            del seen[next(iter(seen))]

    def to_dict(self) -> dict[str, Any]:
        # Shallow: the encoder copies what it writes (dataclasses.asdict deep-copies every list).
        data = {name: getattr(self, name) for name in _FIELDS}
        data["stage"] = self.stage.value if self.stage else None
        data["seen_ids"] = [[d, at] for d, at in self.seen_ids.items()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserState:
        values = dict(data)
        values["stage"] = Stage(values["stage"]) if values.get("stage") else None
        values["recent_interactions_ms"] = list(values.get("recent_interactions_ms") or [])
        values["seen_ids"] = {d: at for d, at in values.get("seen_ids") or []}
        values["history"] = [
            [Stage(f) if f else None, Stage(t), at] for f, t, at in values.get("history") or []
        ]
        values.pop("offsets", None)  # kept by earlier versions
        return cls(**values)


_FIELDS = tuple(f.name for f in fields(UserState))


def _watch(state: UserState, fact: Fact) -> None:
    """Seconds watched in the user's latest live session; a late report of an earlier
    session does not count towards the current one."""
    if fact.session_id == state.watch_session_id:
        state.watch_session_s += fact.seconds
        state.watch_session_ms = max(state.watch_session_ms or fact.ts_ms, fact.ts_ms)
    elif state.watch_session_ms is None or fact.ts_ms >= state.watch_session_ms:
        state.watch_session_id = fact.session_id
        state.watch_session_s = fact.seconds
        state.watch_session_ms = fact.ts_ms


def _keep_interaction(
    state: UserState, rules: StageRules, ts: int, keep_from_ms: int | None
) -> None:
    """Count the interaction and keep its time: every time from `keep_from_ms` on (what a
    late event may still need), the `active_min_interactions` before it, and never more than
    `kept_interactions` (the newest)."""
    state.interactions += 1
    if state.last_interaction_ms is None or ts > state.last_interaction_ms:
        state.last_interaction_ms = ts
    recent = state.recent_interactions_ms
    if not recent or ts >= recent[-1]:
        recent.append(ts)
    else:
        insort(recent, ts)
    if keep_from_ms is not None and recent[0] < keep_from_ms:
        # Before keep_from_ms: at least the `active_min_interactions` the rules need there,
        # and never fewer than `min_kept_interactions` in all (slack for a replay not marked
        # as a backfill, whose topics may be read far apart).
        old = bisect_left(recent, keep_from_ms) - rules.active_min_interactions
        old = min(old, len(recent) - rules.min_kept_interactions)
        if old > 0:
            del recent[:old]
    if len(recent) > rules.kept_interactions:
        del recent[: len(recent) - rules.kept_interactions]


def apply(
    state: UserState,
    fact: Fact,
    rules: StageRules,
    limits: OrderLimits | None = None,
    keep_from_ms: int | None = None,
) -> list[Transition]:
    """Apply one event, in whatever order it arrives: its counts and sums, then the stage
    history it changes.

    An event after everything derived so far moves the history on (idle transitions before
    it, then the stage at its time); an earlier one derives the history again from its time
    (the returned transitions then include corrections, `retracted`). The state is a
    function of the set of events applied, not of their order.

    `keep_from_ms` is how late an event may still come and derive the history exactly (the
    partition's watermark less the allowed lateness): interaction times from then on are kept
    (at most `kept_interactions`); None keeps them all up to that bound.

    An order event must have passed `orders.check` first (the scorer does it): a payment is
    entered in the order ledger, a refund counts at most what its order paid.
    """
    ts = fact.ts_ms
    in_order = state.clock_ms is None or ts > state.clock_ms
    out = advance(state, rules, ts - 1) if in_order and fact.is_interaction else []
    state.first_seen_ms = ts if state.first_seen_ms is None else min(state.first_seen_ms, ts)
    state.last_event_ms = ts if state.last_event_ms is None else max(state.last_event_ms, ts)
    if fact.is_interaction:
        _keep_interaction(state, rules, ts, keep_from_ms)
    if fact.type == "watch" and fact.session_id is not None:
        _watch(state, fact)
    if fact.type == PAID:
        state.order_count += 1
        if fact.amount_cents == 0:
            state.free_orders += 1
        state.monetary_cents += fact.amount_cents
        state.paid_cents += fact.amount_cents
        state.first_paid_ms = ts if state.first_paid_ms is None else min(state.first_paid_ms, ts)
        state.last_paid_ms = ts if state.last_paid_ms is None else max(state.last_paid_ms, ts)
        ledger.record(state, fact, fact.amount_cents, limits or DEFAULT_ORDER_LIMITS)
    elif fact.type == REFUNDED:
        state.refund_count += 1
        counted = ledger.refund_amount(state, fact)
        state.monetary_cents -= counted
        ledger.record(state, fact, counted, limits or DEFAULT_ORDER_LIMITS)
    if fact.is_interaction and in_order:
        state.clock_ms = ts
        move(state, stage_now(state, rules, ts), ts, out)
    elif fact.is_interaction:
        out += rederive(state, rules, ts)
    # The history is known at least up to the user's latest event, of any kind.
    out += advance(state, rules, state.last_event_ms)
    prune(state, rules)
    state.version += 1
    return out
