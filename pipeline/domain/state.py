"""Per-user state and how one event changes it: pure, deterministic, on the event clock."""

from __future__ import annotations

import hashlib
import zlib
from bisect import bisect_left, insort
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from pipeline.domain import orders as ledger
from pipeline.domain.history import derive
from pipeline.domain.orders import PAID, REFUNDED, OrderLimits
from pipeline.domain.stages import REACTIVATED_FROM, Stage, StageRules, change_points, stage_at

__all__ = ["PAID", "REFUNDED", "Fact", "Transition", "UserState", "advance", "apply"]
DEFAULT_ORDER_LIMITS = OrderLimits()

NOT_INTERACTIONS = frozenset({"touch_sent", "touch_opened"})


class Fact(NamedTuple):
    """What the domain needs of a validated event, free of any transport type (a named
    tuple: one is made for every event, at a fifth of a frozen dataclass's cost)."""

    user_id: str
    type: str
    ts_ms: int
    amount_cents: int = 0  # in the base currency, for orders
    seconds: float = 0.0  # watched, for `watch`
    text: str | None = None  # of a comment or chat message
    room_id: str | None = None  # of a live event
    session_id: str | None = None  # of a live event: one broadcast
    order_id: str | None = None  # of an order event
    payload: int = 0  # payload_digest of the event (0: unknown), to tell a retry from a reuse

    @property
    def is_interaction(self) -> bool:
        return self.type not in NOT_INTERACTIONS


def event_digest(event_id: str) -> int:
    """A stable 64-bit digest of an event id (the same in every process)."""
    return int.from_bytes(
        hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True
    )


# A remembered event id maps to its event time (ms, the low 42 bits: up to the year 2109)
# and a 20-bit digest of its payload above them, in one int that stays within int64.
_TS_BITS = 42
_TS_MASK = (1 << _TS_BITS) - 1
_PAYLOAD_BITS = 20


def payload_digest(canonical: bytes) -> int:
    """A stable digest of an event's payload, 1 to 2^20 - 1 (0 means unknown): a resend of
    the same event gives the same digest, a reused id with another payload another one
    (with probability 1 - 2^-20)."""
    return (zlib.crc32(canonical) % ((1 << _PAYLOAD_BITS) - 1)) + 1


def seen_at(packed: int) -> int:
    """Event time (ms) of a remembered event id."""
    return packed & _TS_MASK


def seen_payload(packed: int) -> int:
    """Payload digest of a remembered event id (0: remembered before digests were kept)."""
    return packed >> _TS_BITS


@dataclass(frozen=True, slots=True)
class Transition:
    """A stage change of one user at an event time."""

    user_id: str
    from_stage: Stage | None
    to_stage: Stage
    at_ms: int
    # A correction: this transition, published before, is no longer part of the history (a
    # late event changed what happened from some time on).
    retracted: bool = False

    @property
    def is_reactivation(self) -> bool:
        return self.from_stage in REACTIVATED_FROM and self.to_stage not in REACTIVATED_FROM


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
        seen[digest] = (payload << _TS_BITS) | (ts_ms & _TS_MASK)
        newest = newest_ms
        if newest is None:
            newest = self.last_event_ms if self.last_event_ms is not None else ts_ms
        if by_age and len(seen) > min_ids:
            oldest = newest - horizon_ms
            stale = [d for d, packed in seen.items() if packed & _TS_MASK < oldest]
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


def _stage_now(state: UserState, rules: StageRules, at_ms: int) -> Stage | None:
    return stage_at(
        rules, at_ms, state.last_interaction_ms, state.recent_interactions_ms, state.first_paid_ms
    )


def _move(state: UserState, to: Stage | None, at_ms: int, out: list[Transition]) -> None:
    if to is None or to == state.stage:
        return
    transition = Transition(state.user_id, state.stage, to, at_ms)
    if transition.is_reactivation:
        state.reactivations += 1
    state.history.append([state.stage, to, at_ms])
    state.stage = to
    state.stage_since_ms = at_ms
    out.append(transition)


def _exact_from(state: UserState, rules: StageRules) -> int | None:
    """The earliest time the kept interactions derive the stage exactly from (None: all
    of them are kept, so any time)."""
    kept = state.recent_interactions_ms
    if state.interactions <= len(kept):
        return None
    return kept[rules.active_min_interactions - 1]


def _prune(state: UserState, rules: StageRules) -> None:
    """Drop history no late event can change any more (before the exact horizon), keeping
    the last transition before it."""
    horizon = _exact_from(state, rules)
    history = state.history
    if horizon is None or len(history) < 2:
        return
    cut = 0
    while cut + 1 < len(history) and history[cut + 1][2] < horizon:
        cut += 1
    if cut:
        del history[:cut]


def rederive(state: UserState, rules: StageRules, from_ms: int) -> list[Transition]:
    """Derive the history again from `from_ms` up to the state's clock after a late event;
    returns the corrections: transitions retracted, then transitions added."""
    if state.clock_ms is None:
        return []
    start = from_ms
    horizon = _exact_from(state, rules)
    if horizon is not None and start < horizon:
        state.history_gaps += 1
        start = horizon
    history = state.history
    keep = [h for h in history if h[2] < start]
    old = [h for h in history if h[2] >= start]
    if keep:
        before: Stage | None = keep[-1][1]
    elif old:
        before = old[0][0]
    else:
        before = state.stage
    new = derive(
        rules, state.recent_interactions_ms, state.first_paid_ms, before, start, state.clock_ms
    )
    old_set = {(f, t, at) for f, t, at in old}
    new_set = set(new)
    out = [
        Transition(state.user_id, f, t, at, retracted=True)
        for f, t, at in old
        if (f, t, at) not in new_set
    ]
    out += [Transition(state.user_id, f, t, at) for f, t, at in new if (f, t, at) not in old_set]
    for transition in out:
        if transition.is_reactivation:
            state.reactivations += -1 if transition.retracted else 1
    state.history = keep + [[f, t, at] for f, t, at in new]
    if state.history:
        state.stage, state.stage_since_ms = state.history[-1][1], state.history[-1][2]
    else:
        state.stage = before
    return out


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


def advance(state: UserState, rules: StageRules, now_ms: int) -> list[Transition]:
    """Derive the stage history on to `now_ms` with no new event (a watermark settling idle
    users, or the time just before a new event).

    Each transition carries the exact time its rule fired (say, 30 days after the last
    interaction), so advancing late gives the same history as advancing often.
    Advancing to `now_ms` settles it: an event stamped at or before it is late and corrects
    the history (so a watermark settles the times strictly before its own).
    """
    if state.clock_ms is not None and now_ms <= state.clock_ms:
        return []  # derived that far already
    out: list[Transition] = []
    points = change_points(
        rules, state.last_interaction_ms, state.recent_interactions_ms, state.first_paid_ms
    )
    after = state.clock_ms if state.clock_ms is not None else -1
    for point in points:
        if point <= after:
            continue
        if point > now_ms:
            break
        _move(state, _stage_now(state, rules, point), point, out)
    if state.last_interaction_ms is not None:
        state.clock_ms = now_ms
    return out


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
        _move(state, _stage_now(state, rules, ts), ts, out)
    elif fact.is_interaction:
        out += rederive(state, rules, ts)
    # The history is known at least up to the user's latest event, of any kind.
    out += advance(state, rules, state.last_event_ms)
    _prune(state, rules)
    state.version += 1
    return out
