"""Property tests of the per-user state machine against a brute-force reading of the rules."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.facts import Fact
from pipeline.domain.history import Transition, advance
from pipeline.domain.stages import DAY_MS, Stage, StageRules, stage_at
from pipeline.domain.state import UserState, apply

T0 = 1_700_000_000_000
TYPES = [
    "like",
    "comment",
    "message",
    "touch_sent",
    "touch_opened",
    "touch_clicked",
    "order_created",
    "order_paid",
    "order_refunded",
]
NOT_INTERACTIONS = {"touch_sent", "touch_opened"}
RULE_SETS = [
    StageRules(),
    StageRules(active_min_interactions=3, active_window_days=10, new_window_days=45),
    StageRules(
        active_min_interactions=2,
        active_window_days=5,
        new_window_days=3,
        silent_after_days=7,
        churned_after_days=12,
    ),
]

Move = tuple[Stage | None, Stage, int]


@dataclass(frozen=True)
class Ev:
    ts: int
    type: str
    cents: int

    def fact(self) -> Fact:
        return Fact("u", self.type, self.ts, self.cents)


@st.composite
def timelines(draw: st.DrawFn, unique: bool = True) -> list[Ev]:
    """Events at distinct times (hours, and sometimes exact day offsets), in time order."""
    offsets = draw(
        st.lists(
            st.integers(0, 150 * 24) | st.integers(0, 150).map(lambda d: d * 24),
            min_size=1,
            max_size=40,
            unique=unique,
        )
    )
    events = [
        Ev(T0 + o * 3_600_000, draw(st.sampled_from(TYPES)), draw(st.integers(1, 100_000)))
        for o in offsets
    ]
    return sorted(events, key=lambda e: e.ts)


def moves(transitions: list[Transition]) -> list[Move]:
    return [(t.from_stage, t.to_stage, t.at_ms) for t in transitions]


def truth(rules: StageRules, events: list[Ev], at: int) -> Stage | None:
    """The stage at `at` from exactly the given events, recomputed from scratch."""
    inter = sorted(e.ts for e in events if e.type not in NOT_INTERACTIONS)
    paid = [e.ts for e in events if e.type == "order_paid"]
    return stage_at(rules, at, inter[-1] if inter else None, inter, min(paid) if paid else None)


def oracle(rules: StageRules, events: list[Ev], end: int) -> list[Move]:
    """Every stage change up to `end`: the stage at a time is the rules applied to every
    event at or before it, and it only changes at an event or at an event time plus one of
    the thresholds, so evaluating there is enough."""
    durations = [0, rules.silent_ms, rules.churned_ms, rules.active_window_ms, rules.new_window_ms]
    checks = {e.ts + d for e in events for d in durations if e.ts + d <= end}
    out: list[Move] = []
    current: Stage | None = None
    for at in sorted(checks):
        known = [e for e in events if e.ts <= at]
        stage = truth(rules, known, at)
        if stage is not None and stage != current:
            out.append((current, stage, at))
            current = stage
    return out


def replay(rules: StageRules, events: list[Ev], end: int) -> tuple[UserState, list[Transition]]:
    state = UserState("u")
    out: list[Transition] = []
    for e in events:
        out.extend(apply(state, e.fact(), rules))
    out.extend(advance(state, rules, end))
    return state, out


@settings(max_examples=300, deadline=None)
@given(timelines(), st.integers(0, 200 * DAY_MS), st.sampled_from(RULE_SETS))
def test_in_order_replay_matches_the_rules_recomputed_from_scratch(
    events: list[Ev], extra: int, rules: StageRules
) -> None:
    end = events[-1].ts + extra
    state, out = replay(rules, events, end)
    assert moves(out) == oracle(rules, events, end)
    assert state.stage == truth(rules, events, end)
    assert state.reactivations == sum(t.is_reactivation for t in out)


@settings(max_examples=300, deadline=None)
@given(
    timelines(),
    st.lists(st.integers(0, 1000), max_size=60),
    st.integers(0, 200 * DAY_MS),
    st.sampled_from(RULE_SETS),
)
def test_advancing_step_by_step_equals_one_late_advance(
    events: list[Ev], ticks: list[int], extra: int, rules: StageRules
) -> None:
    end = events[-1].ts + extra
    once, once_out = replay(rules, events, end)

    stepped = UserState("u")
    stepped_out: list[Transition] = []
    previous = events[0].ts
    tick_iter = iter(ticks)
    for e in [*events, Ev(end, "", 0)]:
        # advance on the event clock at a few times between the previous event and this one
        # (strictly before it: advancing to its own time would settle that time, making it
        # late; the scorer settles strictly before its watermark)
        for _ in range(3):
            tick = next(tick_iter, None)
            if tick is None:
                break
            at = previous + max(0, e.ts - 1 - previous) * tick // 1000
            stepped_out.extend(advance(stepped, rules, at))
        if e.type:
            stepped_out.extend(apply(stepped, e.fact(), rules))
        previous = e.ts
    stepped_out.extend(advance(stepped, rules, end))

    assert moves(stepped_out) == moves(once_out)
    assert stepped.to_dict() == once.to_dict()


@settings(max_examples=200, deadline=None)
@given(timelines(unique=False), st.randoms(use_true_random=False), st.sampled_from(RULE_SETS))
def test_aggregates_do_not_depend_on_arrival_order(
    events: list[Ev], rnd: object, rules: StageRules
) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    state = UserState("u")
    for e in shuffled:
        apply(state, e.fact(), rules)

    inter = sorted(e.ts for e in events if e.type not in NOT_INTERACTIONS)
    paid = [e for e in events if e.type == "order_paid"]
    refunds = [e for e in events if e.type == "order_refunded"]
    n = rules.kept_interactions
    assert state.recent_interactions_ms == inter[-n:]
    assert len(state.recent_interactions_ms) <= n
    assert state.interactions == len(inter)
    assert state.last_interaction_ms == (inter[-1] if inter else None)
    assert state.first_seen_ms == events[0].ts
    assert state.last_event_ms == events[-1].ts
    assert state.order_count == len(paid)
    assert state.refund_count == len(refunds)
    # These refunds name no order, so none is in the ledger: they count no money (the scorer
    # refuses a refund of an unknown order before it reaches the state).
    assert state.monetary_cents == sum(e.cents for e in paid)
    assert state.first_paid_ms == (min(e.ts for e in paid) if paid else None)
    assert state.last_paid_ms == (max(e.ts for e in paid) if paid else None)
    assert state.version == len(events)
    # The stage once all events are known is the one the rules give at the latest event, and
    # the whole history is the one the rules give, whatever order the events came in.
    assert state.stage == truth(rules, events, events[-1].ts)
    assert [tuple(h) for h in state.history] == oracle(rules, events, events[-1].ts)


@settings(max_examples=100, deadline=None)
@given(timelines(), st.sampled_from(RULE_SETS))
def test_serialised_state_continues_like_the_live_one(events: list[Ev], rules: StageRules) -> None:
    live = UserState("u")
    stored = UserState("u")
    for e in events:
        apply(live, e.fact(), rules)
        stored = UserState.from_dict(orjson.loads(orjson.dumps(stored.to_dict())))
        apply(stored, e.fact(), rules)
    assert stored == live
    assert moves(advance(stored, rules, events[-1].ts + 365 * DAY_MS)) == moves(
        advance(live, rules, events[-1].ts + 365 * DAY_MS)
    )
