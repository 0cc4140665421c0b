"""Per-user state and how one event changes it: pure, deterministic, on the event clock."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.domain import orders as ledger
from pipeline.domain.orders import PAID, REFUNDED, OrderLimits
from pipeline.domain.stages import REACTIVATED_FROM, Stage, StageRules, change_points, stage_at

__all__ = ["PAID", "REFUNDED", "Fact", "Transition", "UserState", "advance", "apply"]
DEFAULT_ORDER_LIMITS = OrderLimits()

NOT_INTERACTIONS = frozenset({"touch_sent", "touch_opened"})


@dataclass(frozen=True, slots=True)
class Fact:
    """What the domain needs of a validated event, free of any transport type."""

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
    clock_ms: int | None = None  # the latest time the stage has been evaluated at
    reactivations: int = 0
    version: int = 0
    engagement_value: float = 0.0
    engagement_at_ms: int | None = None
    sentiment_label: str | None = None
    sentiment_score: float | None = None
    sentiment_at_ms: int | None = None
    # Churn-model features taken when the user went silent, until the label is known.
    churn_snapshot: dict[str, float] | None = None
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
    ) -> None:
        """Keep the id (with its payload digest). The user's last `min_ids` ids are always
        kept, whatever their age (a replay after a crash during catch-up can span weeks of
        event time); older ones go once they fall out of the horizon before the newest event;
        never more than `max_ids`."""
        seen = self.seen_ids
        seen[digest] = (payload << _TS_BITS) | (ts_ms & _TS_MASK)
        newest = self.last_event_ms if self.last_event_ms is not None else ts_ms
        if len(seen) > min_ids:
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
    state.stage = to
    state.stage_since_ms = at_ms
    out.append(transition)


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
    """Move the stage along the event clock up to `now_ms` with no new event.

    Each transition carries the exact time its rule fired (say, 30 days after the last
    interaction), so advancing late gives the same history as advancing often.
    """
    if state.clock_ms is not None and now_ms <= state.clock_ms:
        # Every point up to `now_ms` is settled already (the second call of an event, or a
        # late event): nothing moves, and the clock stays.
        return []
    out: list[Transition] = []
    points = change_points(
        rules, state.last_interaction_ms, state.recent_interactions_ms, state.first_paid_ms
    )
    # Points at or before the stage's last move, or before the time it was last evaluated at,
    # are settled: evaluating them again with later history would rewrite the past.
    settled = max(state.stage_since_ms or -1, state.clock_ms or -1)
    for point in points:
        if point <= settled:
            continue
        if point > now_ms:
            break
        _move(state, _stage_now(state, rules, point), point, out)
    if state.last_interaction_ms is not None:
        state.clock_ms = now_ms if state.clock_ms is None else max(state.clock_ms, now_ms)
    return out


def apply(
    state: UserState, fact: Fact, rules: StageRules, limits: OrderLimits | None = None
) -> list[Transition]:
    """Apply one event: idle transitions due before it, then its own effect on the stage.

    An order event must have passed `orders.check` first (the scorer does it): a payment is
    entered in the order ledger, a refund counts at most what its order paid.
    """
    out = advance(state, rules, fact.ts_ms)
    ts = fact.ts_ms
    state.first_seen_ms = ts if state.first_seen_ms is None else min(state.first_seen_ms, ts)
    state.last_event_ms = ts if state.last_event_ms is None else max(state.last_event_ms, ts)
    if fact.is_interaction:
        state.interactions += 1
        if state.last_interaction_ms is None or ts > state.last_interaction_ms:
            state.last_interaction_ms = ts
        recent = state.recent_interactions_ms
        recent.append(ts)
        if len(recent) > 1 and recent[-2] > ts:
            recent.sort()
        del recent[: -rules.active_min_interactions]
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
    # Never evaluate before a time the stage was already moved to: history only goes forward.
    clock = max(ts, state.last_event_ms, state.clock_ms or ts)
    state.clock_ms = clock
    _move(state, _stage_now(state, rules, clock), clock, out)
    state.version += 1
    return out
